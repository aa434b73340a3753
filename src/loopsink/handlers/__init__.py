"""The sinks: an async twin for each handler of ``logging`` and ``logging.handlers``."""

from ._buffering import BufferingHandler as BufferingHandler
from ._buffering import MemoryHandler as MemoryHandler
from ._file import FileHandler as FileHandler
from ._http import HTTPHandler as HTTPHandler
from ._http_presets import HTTPBody as HTTPBody
from ._nteventlog import NTEventLogHandler as NTEventLogHandler
from ._nteventlog import NTEventLogUnavailableError as NTEventLogUnavailableError
from ._queuehandler import QueueHandler as QueueHandler
from ._queuehandler import QueueListener as QueueListener
from ._rotating import BaseRotatingHandler as BaseRotatingHandler
from ._rotating import RotatingFileHandler as RotatingFileHandler
from ._rotating import TimedRotatingFileHandler as TimedRotatingFileHandler
from ._smtp import SMTPHandler as SMTPHandler
from ._socket import DatagramHandler as DatagramHandler
from ._socket import SocketHandler as SocketHandler
from ._stream import NullHandler as NullHandler
from ._stream import StreamHandler as StreamHandler
from ._syslog import RFC5424Formatter as RFC5424Formatter
from ._syslog import SysLogHandler as SysLogHandler
from ._watched import WatchedFileHandler as WatchedFileHandler

__all__ = [
    "BaseRotatingHandler",
    "BufferingHandler",
    "DatagramHandler",
    "FileHandler",
    "HTTPBody",
    "HTTPHandler",
    "MemoryHandler",
    "NTEventLogHandler",
    "NTEventLogUnavailableError",
    "NullHandler",
    "QueueHandler",
    "QueueListener",
    "RFC5424Formatter",
    "RotatingFileHandler",
    "SMTPHandler",
    "SocketHandler",
    "StreamHandler",
    "SysLogHandler",
    "TimedRotatingFileHandler",
    "WatchedFileHandler",
]
