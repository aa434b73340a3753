"""The sinks: one async twin for each handler of the stdlib's ``logging`` and ``logging.handlers``."""

from ._file import FileHandler as FileHandler
from ._http import HTTPHandler as HTTPHandler
from ._http_presets import HTTPBody as HTTPBody
from ._rotating import BaseRotatingHandler as BaseRotatingHandler
from ._rotating import RotatingFileHandler as RotatingFileHandler
from ._rotating import TimedRotatingFileHandler as TimedRotatingFileHandler
from ._stream import NullHandler as NullHandler
from ._stream import StreamHandler as StreamHandler
from ._watched import WatchedFileHandler as WatchedFileHandler

__all__ = [
    "BaseRotatingHandler",
    "FileHandler",
    "HTTPBody",
    "HTTPHandler",
    "NullHandler",
    "RotatingFileHandler",
    "StreamHandler",
    "TimedRotatingFileHandler",
    "WatchedFileHandler",
]
