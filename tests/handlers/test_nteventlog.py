"""NTEventLogHandler: the Windows path with stand-in pywin32 modules, the error elsewhere.

The stand-ins record what the handler calls. The stdlib's handler does not check the
platform, so with the same stand-ins installed it runs here too, and both handlers' calls
are compared on the same records.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import types
from typing import Any

import pytest

import loopsink
from loopsink import LogQueue, MissingExtraError, NTEventLogHandler, NTEventLogUnavailableError
from loopsink.handlers import _nteventlog

# The real values from win32evtlog.
ERROR_TYPE, WARNING_TYPE, INFORMATION_TYPE = 1, 2, 4


class FakeWin32:
    """Stand-ins for ``win32evtlogutil`` and ``win32evtlog``, recording every call."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, int, int, int, list[str]]] = []
        self.threads: set[int] = set()
        self.register_error: Exception | None = None
        self.fail_on: str | None = None

        util = types.ModuleType("win32evtlogutil")
        util.__file__ = "/py/Lib/site-packages/win32/lib/win32evtlogutil.py"
        util.AddSourceToRegistry = self._add_source  # type: ignore[attr-defined]
        util.ReportEvent = self._report  # type: ignore[attr-defined]
        evtlog = types.ModuleType("win32evtlog")
        evtlog.EVENTLOG_ERROR_TYPE = ERROR_TYPE  # type: ignore[attr-defined]
        evtlog.EVENTLOG_WARNING_TYPE = WARNING_TYPE  # type: ignore[attr-defined]
        evtlog.EVENTLOG_INFORMATION_TYPE = INFORMATION_TYPE  # type: ignore[attr-defined]
        self.util, self.evtlog = util, evtlog

    def _add_source(self, appname: str, dllname: str, logtype: str) -> None:
        if self.register_error is not None:
            raise self.register_error
        self.registered.append((appname, dllname, logtype))

    def _report(
        self, appname: str, msg_id: int, category: int, etype: int, strings: list[str]
    ) -> None:
        if self.fail_on is not None and self.fail_on in strings[0]:
            raise OSError(f"event log refused {strings[0]!r}")
        self.threads.add(threading.get_ident())
        self.events.append((appname, msg_id, category, etype, strings))


class WinError(Exception):
    def __init__(self, winerror: int) -> None:
        super().__init__(f"winerror {winerror}")
        self.winerror = winerror


@pytest.fixture
def win32(monkeypatch: pytest.MonkeyPatch) -> FakeWin32:
    """Pretend to be Windows with pywin32 installed."""
    fake = FakeWin32()
    monkeypatch.setitem(sys.modules, "win32evtlogutil", fake.util)
    monkeypatch.setitem(sys.modules, "win32evtlog", fake.evtlog)
    monkeypatch.setattr(_nteventlog, "_platform", lambda: "win32")
    return fake


def make_record(i: int, level: int) -> logging.LogRecord:
    return logging.LogRecord("svc", level, __file__, 1, "event %d", (i,), None)


LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 25, 55]


# -- elsewhere -------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="checks the error off Windows")
def test_construction_off_windows_names_the_platform_and_the_package() -> None:
    with pytest.raises(
        NTEventLogUnavailableError,
        match=(
            r"^NTEventLogHandler writes to the Windows event log, which needs Windows and the "
            r"pywin32 package \(modules win32evtlogutil, win32evtlog\); this platform is "
            rf"'{sys.platform}'\. Use loopsink\.SysLogHandler \(or a FileHandler\) here instead$"
        ),
    ):
        NTEventLogHandler("svc")


def test_windows_without_pywin32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_nteventlog, "_platform", lambda: "win32")
    monkeypatch.setitem(sys.modules, "win32evtlogutil", None)  # makes the import fail
    with pytest.raises(
        NTEventLogUnavailableError,
        match=r"^NTEventLogHandler needs the pywin32 package \(module win32evtlogutil could not "
        r"be imported: .*\): pip install pywin32$",
    ) as info:
        NTEventLogHandler("svc")
    # Catchable as the other "optional dependency missing" errors are.
    assert isinstance(info.value, MissingExtraError)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, loopsink.LoopsinkError)
    assert info.value.name == "win32evtlogutil"


# -- the Windows path, with stand-ins --------------------------------------------------------------


def test_construction_registers_the_source_as_the_stdlib_does(win32: FakeWin32) -> None:
    ours = NTEventLogHandler("svc")
    theirs: Any = logging.handlers.NTEventLogHandler("svc")  # typeshed lacks some attributes
    assert win32.registered[0] == win32.registered[1]
    appname, dllname, logtype = win32.registered[0]
    assert (appname, logtype) == ("svc", "Application")
    assert dllname.replace("\\", "/") == "/py/Lib/site-packages/win32/win32service.pyd"
    assert (ours.appname, ours.dllname, ours.logtype) == (
        theirs.appname,
        theirs.dllname,
        theirs.logtype,
    )
    assert ours.typemap == theirs.typemap
    assert ours.deftype == theirs.deftype == ERROR_TYPE
    NTEventLogHandler("other", dllname=r"C:\app\msgs.dll", logtype="System")
    assert win32.registered[-1] == ("other", r"C:\app\msgs.dll", "System")


def test_access_denied_on_registration_is_ignored_other_errors_raise(win32: FakeWin32) -> None:
    win32.register_error = WinError(5)
    NTEventLogHandler("svc")  # a non-admin user logging to an existing source
    win32.register_error = WinError(87)
    with pytest.raises(WinError, match=r"^winerror 87$"):
        NTEventLogHandler("svc")


async def test_records_reach_report_event_as_the_stdlib_sends_them(win32: FakeWin32) -> None:
    records = [make_record(i, level) for i, level in enumerate(LEVELS)]
    theirs = logging.handlers.NTEventLogHandler("svc")
    for record in records:
        theirs.handle(record)
    expected, win32.events = win32.events, []
    win32.threads.clear()

    ours = NTEventLogHandler("svc")
    for record in records:
        await ours.handle(record)
    assert win32.events == expected
    assert [e[3] for e in win32.events] == [
        INFORMATION_TYPE,
        INFORMATION_TYPE,
        WARNING_TYPE,
        ERROR_TYPE,
        ERROR_TYPE,
        ERROR_TYPE,  # level 25 is not in typemap: deftype
        ERROR_TYPE,
    ]
    assert win32.events[0] == ("svc", 1, 0, INFORMATION_TYPE, ["event 0"])
    assert threading.get_ident() not in win32.threads  # ReportEvent ran in a worker thread


async def test_a_batch_from_the_queue_is_one_thread_hop_and_keeps_order(win32: FakeWin32) -> None:
    handler = NTEventLogHandler("svc")
    handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
    async with LogQueue(handler) as queue:
        for i in range(20):
            queue.put(make_record(i, logging.WARNING))
    assert [e[4] for e in win32.events] == [[f"WARNING:event {i}"] for i in range(20)]
    assert len(win32.threads) >= 1
    assert threading.get_ident() not in win32.threads


async def test_overrides_and_typemap_are_honoured(win32: FakeWin32) -> None:
    class Custom(NTEventLogHandler):
        def getMessageID(self, record: logging.LogRecord) -> int:
            return 1000 + record.levelno

        def getEventCategory(self, record: logging.LogRecord) -> int:
            return 7

    handler = Custom("svc")
    handler.typemap[25] = WARNING_TYPE
    await handler.handle(make_record(0, 25))
    assert win32.events == [("svc", 1025, 7, WARNING_TYPE, ["event 0"])]


async def test_a_failing_report_is_handled_and_the_rest_still_sent(
    win32: FakeWin32, capsys: pytest.CaptureFixture[str]
) -> None:
    win32.fail_on = "event 1"
    handler = NTEventLogHandler("svc")
    async with LogQueue(handler) as queue:
        for i in range(3):
            queue.put(make_record(i, logging.ERROR))
        await queue.flush()
        assert queue.stats.sinks[0].errors == 1
    assert [e[4] for e in win32.events] == [["event 0"], ["event 2"]]
    assert handler.error_count == 1
    assert "OSError: event log refused 'event 1'" in capsys.readouterr().err


async def test_close_keeps_the_source_registered(win32: FakeWin32) -> None:
    handler = NTEventLogHandler("svc")
    await handler.close()
    assert win32.registered == [("svc", win32.registered[0][1], "Application")]
    assert not hasattr(win32.util, "RemoveSourceFromRegistry")


def test_bad_appname_is_refused(win32: FakeWin32) -> None:
    with pytest.raises(
        TypeError, match=r"^NTEventLogHandler appname must be a non-empty str, got ''$"
    ):
        NTEventLogHandler("")
    bad: Any = None
    with pytest.raises(
        TypeError, match=r"^NTEventLogHandler appname must be a non-empty str, got None$"
    ):
        NTEventLogHandler(bad)
