"""loopsink: asyncio-native logging handlers.

Every handler of the stdlib's ``logging`` and ``logging.handlers`` as an async sink, fed by
an event-loop-owned queue, with a plain ``logging.Handler`` bridging ordinary log calls into
it without ever blocking the loop. Runs on asyncio and trio (anyio).
"""

from . import _configerrors  # noqa: F401 - registers the exit hook that repeats config errors
from ._bridge import LoggingBridge as LoggingBridge
from ._bridge import ThreadedQueue as ThreadedQueue
from ._bridge import install as install
from ._bridge import start_in_thread as start_in_thread
from ._context import Binding as Binding
from ._context import bind as bind
from ._context import bound_fields as bound_fields
from ._exceptions import LoopsinkError as LoopsinkError
from ._exceptions import MissingExtraError as MissingExtraError
from ._exceptions import QueueClosedError as QueueClosedError
from ._exceptions import QueueNotRunningError as QueueNotRunningError
from ._handler import AsyncHandler as AsyncHandler
from ._json import JSONFormatter as JSONFormatter
from ._queue import LogQueue as LogQueue
from ._queue import OverflowPolicy as OverflowPolicy
from ._stats import DropReason as DropReason
from ._stats import QueueStats as QueueStats
from ._stats import SinkStats as SinkStats
from ._version import __version__ as __version__
from .handlers import BaseRotatingHandler as BaseRotatingHandler
from .handlers import BufferingHandler as BufferingHandler
from .handlers import DatagramHandler as DatagramHandler
from .handlers import FileHandler as FileHandler
from .handlers import HTTPBody as HTTPBody
from .handlers import HTTPHandler as HTTPHandler
from .handlers import MemoryHandler as MemoryHandler
from .handlers import NTEventLogHandler as NTEventLogHandler
from .handlers import NTEventLogUnavailableError as NTEventLogUnavailableError
from .handlers import NullHandler as NullHandler
from .handlers import QueueHandler as QueueHandler
from .handlers import QueueListener as QueueListener
from .handlers import RFC5424Formatter as RFC5424Formatter
from .handlers import RotatingFileHandler as RotatingFileHandler
from .handlers import SMTPHandler as SMTPHandler
from .handlers import SocketHandler as SocketHandler
from .handlers import StreamHandler as StreamHandler
from .handlers import SysLogHandler as SysLogHandler
from .handlers import TimedRotatingFileHandler as TimedRotatingFileHandler
from .handlers import WatchedFileHandler as WatchedFileHandler

__all__ = [
    "AsyncHandler",
    "BaseRotatingHandler",
    "Binding",
    "BufferingHandler",
    "DatagramHandler",
    "DropReason",
    "FileHandler",
    "HTTPBody",
    "HTTPHandler",
    "JSONFormatter",
    "LogQueue",
    "LoggingBridge",
    "LoopsinkError",
    "MemoryHandler",
    "MissingExtraError",
    "NTEventLogHandler",
    "NTEventLogUnavailableError",
    "NullHandler",
    "OverflowPolicy",
    "QueueClosedError",
    "QueueHandler",
    "QueueListener",
    "QueueNotRunningError",
    "QueueStats",
    "RFC5424Formatter",
    "RotatingFileHandler",
    "SMTPHandler",
    "SinkStats",
    "SocketHandler",
    "StreamHandler",
    "SysLogHandler",
    "ThreadedQueue",
    "TimedRotatingFileHandler",
    "WatchedFileHandler",
    "__version__",
    "bind",
    "bound_fields",
    "install",
    "start_in_thread",
]

# Show the public path in reprs, tracebacks and docs: loopsink.LogQueue, not loopsink._queue.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("loopsink."):
        try:
            _obj.__module__ = "loopsink"
        except (AttributeError, TypeError):  # e.g. typing aliases
            pass
del _name, _obj
