"""The sinks: one async twin for each handler of the stdlib's ``logging`` and ``logging.handlers``."""

from ._file import FileHandler as FileHandler
from ._stream import NullHandler as NullHandler
from ._stream import StreamHandler as StreamHandler

__all__ = ["FileHandler", "NullHandler", "StreamHandler"]
