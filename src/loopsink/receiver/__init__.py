"""Receivers for what loopsink's (and the stdlib's) network handlers send.

``LogReceiver`` listens on TCP, unix stream, UDP and unix datagram sockets, decodes frames
with a restricted unpickler and a size limit, and hands the records to handlers.
The command line ``python -m loopsink listen`` is built on it.
"""

from ._frames import DEFAULT_MAX_FRAME_SIZE as DEFAULT_MAX_FRAME_SIZE
from ._frames import FrameError as FrameError
from ._frames import RejectReason as RejectReason
from ._frames import RestrictedUnpickler as RestrictedUnpickler
from ._frames import StreamDecoder as StreamDecoder
from ._frames import decode_datagram as decode_datagram
from ._frames import decode_payload as decode_payload
from ._server import LogReceiver as LogReceiver
from ._server import ReceiverStats as ReceiverStats
from ._syslog import SyslogReceiver as SyslogReceiver

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FrameError",
    "LogReceiver",
    "ReceiverStats",
    "RejectReason",
    "RestrictedUnpickler",
    "StreamDecoder",
    "SyslogReceiver",
    "decode_datagram",
    "decode_payload",
]

# Show the public path in reprs, tracebacks and docs: loopsink.receiver.LogReceiver.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass
del _name, _obj
