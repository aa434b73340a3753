"""NTEventLogHandler: records to the Windows event log, through pywin32, off the loop.

``ReportEvent`` is a blocking Win32 call, so it runs in a worker thread (one thread hop per
batch). The stdlib's handler, on a machine without pywin32, prints a line and then silently
drops every record; loopsink refuses at construction instead, with an error that names the
platform and the missing package, so a misconfigured service fails where it is set up.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._exceptions import MissingExtraError
from .._executor import executor_of
from .._handler import AsyncHandler

__all__ = ["NTEventLogHandler", "NTEventLogUnavailableError"]

#: The pywin32 modules the handler needs.
_MODULES = ("win32evtlogutil", "win32evtlog")

#: ``winerror`` of "access denied": registering the source needs admin rights, but logging
#: to a source registered earlier does not, so the stdlib lets this one pass. So do we.
_ERROR_ACCESS_DENIED = 5


class NTEventLogUnavailableError(MissingExtraError):
    """The Windows event log cannot be used here: not Windows, or pywin32 is not installed.

    A :class:`~loopsink.MissingExtraError` (so also an ``ImportError``): the fix is a
    platform and a package, said in the message.
    """

    def __init__(self, message: str, module: str = "win32evtlogutil") -> None:
        ImportError.__init__(self, message, name=module)
        self.extra = ""  # no loopsink extra: pywin32 is installed on its own, on Windows


def _platform() -> str:
    """The platform the handler checks (a function so that tests can stand in for Windows)."""
    return sys.platform


def _load_pywin32() -> tuple[Any, Any]:
    platform = _platform()
    if platform != "win32":
        raise NTEventLogUnavailableError(
            f"NTEventLogHandler writes to the Windows event log, which needs Windows and the "
            f"pywin32 package (modules win32evtlogutil, win32evtlog); this platform is "
            f"{platform!r}. Use loopsink.SysLogHandler (or a FileHandler) here instead"
        )
    modules = []
    for name in _MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:  # noqa: PERF203 - raises, so the loop ends here
            raise NTEventLogUnavailableError(
                f"NTEventLogHandler needs the pywin32 package (module {name} could not be "
                f"imported: {exc}): pip install pywin32",
                name,
            ) from exc
    return modules[0], modules[1]


class NTEventLogHandler(AsyncHandler):
    """Writes records to the Windows NT event log, as ``logging.handlers.NTEventLogHandler``.

    At construction the application is registered as an event source (an "access denied"
    failure is ignored, as in the stdlib: the source may have been registered by an
    administrator). Each record becomes one ``ReportEvent`` call with the message ID, event
    category and event type from :meth:`getMessageID`, :meth:`getEventCategory` and
    :meth:`getEventType`, and the formatted record as its only string.

    Args:
        appname: the event source name shown in the Event Viewer.
        dllname: the ``.dll``/``.exe`` holding message definitions; by default pywin32's
            ``win32service.pyd``, whose placeholder message shows the text as is.
        logtype: ``'Application'`` (default), ``'System'`` or ``'Security'``.

    Raises:
        NTEventLogUnavailableError: not on Windows, or pywin32 is not installed.
    """

    def __init__(self, appname: str, dllname: str | None = None, logtype: str = "Application"):
        super().__init__()
        if not isinstance(appname, str) or not appname:
            raise TypeError(f"NTEventLogHandler appname must be a non-empty str, got {appname!r}")
        welu, evtlog = _load_pywin32()
        self.appname = appname
        self._welu = welu
        if not dllname:
            package_dir = os.path.dirname(os.path.dirname(welu.__file__))
            dllname = os.path.join(package_dir, "win32service.pyd")
        self.dllname = dllname
        self.logtype = logtype
        try:
            welu.AddSourceToRegistry(appname, dllname, logtype)
        except Exception as exc:
            if getattr(exc, "winerror", None) != _ERROR_ACCESS_DENIED:
                raise
        self.deftype: int = evtlog.EVENTLOG_ERROR_TYPE
        #: Maps a level to an event type; edit it (or override getEventType) for custom levels.
        self.typemap: dict[int, int] = {
            logging.DEBUG: evtlog.EVENTLOG_INFORMATION_TYPE,
            logging.INFO: evtlog.EVENTLOG_INFORMATION_TYPE,
            logging.WARNING: evtlog.EVENTLOG_WARNING_TYPE,
            logging.ERROR: evtlog.EVENTLOG_ERROR_TYPE,
            logging.CRITICAL: evtlog.EVENTLOG_ERROR_TYPE,
        }

    def getMessageID(self, record: logging.LogRecord) -> int:
        """The message ID for ``record``: 1, the base message of ``win32service.pyd``."""
        return 1

    def getEventCategory(self, record: logging.LogRecord) -> int:
        """The event category for ``record``: 0. Override for your own categories."""
        return 0

    def getEventType(self, record: logging.LogRecord) -> int:
        """The event type for ``record``, looked up in :attr:`typemap` (default: error)."""
        return self.typemap.get(record.levelno, self.deftype)

    def _event(self, record: logging.LogRecord) -> tuple[str, int, int, int, list[str]]:
        return (
            self.appname,
            self.getMessageID(record),
            self.getEventCategory(record),
            self.getEventType(record),
            [self.format(record)],
        )

    async def emit(self, record: logging.LogRecord) -> None:
        """Report ``record`` to the event log, from a worker thread."""
        await executor_of(self).run(self._welu.ReportEvent, *self._event(record))

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        welu = self._welu
        await self.emit_each_in_thread(records, self._event, lambda event: welu.ReportEvent(*event))

    async def close(self) -> None:
        """Close the handler. The event source stays registered, as in the stdlib.

        Removing it would leave the Event Viewer unable to find the message DLL for the
        events already written.
        """
        await super().close()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.appname} {self.logtype} ({level})>"
