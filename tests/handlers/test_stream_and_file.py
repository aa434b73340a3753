"""StreamHandler, FileHandler and NullHandler, compared with the stdlib's on the same records."""

from __future__ import annotations

import io
import logging
import os
import pathlib

import anyio
import pytest

import loopsink
from loopsink import FileHandler, LogQueue, NullHandler, StreamHandler


def records(count: int = 5) -> list[logging.LogRecord]:
    return [
        logging.LogRecord("s", logging.INFO, __file__, 3, "line %d é", (i,), None)
        for i in range(count)
    ]


def stdlib_text(handler_records: list[logging.LogRecord], terminator: str = "\n") -> str:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.terminator = terminator
    for record in handler_records:
        handler.handle(record)
    return buffer.getvalue()


async def test_sync_stream_gets_the_stdlib_text() -> None:
    buffer = io.StringIO()
    async with LogQueue(StreamHandler(buffer)) as queue:
        for record in records():
            queue.put(record)
    assert buffer.getvalue() == stdlib_text(records())


async def test_terminator_is_respected() -> None:
    buffer = io.StringIO()
    sink = StreamHandler(buffer)
    sink.terminator = " | "
    async with LogQueue(sink) as queue:
        for record in records(3):
            queue.put(record)
    assert buffer.getvalue() == stdlib_text(records(3), " | ")


def test_default_stream_is_stderr() -> None:
    import sys

    assert StreamHandler().stream is sys.stderr


def test_a_stream_without_write_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^StreamHandler needs a stream with write\(\)"):
        StreamHandler(42)


async def test_anyio_byte_stream_is_awaited() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](100)

    class Bytes(anyio.abc.ByteSendStream):
        async def send(self, item: bytes) -> None:
            await send.send(item)

        async def send_eof(self) -> None:
            await send.aclose()

        async def aclose(self) -> None:
            await send.aclose()

    with receive:
        async with LogQueue(StreamHandler(Bytes())) as queue:
            for record in records():
                queue.put(record)
        await send.aclose()
        got = b"".join([item async for item in receive])
    assert got.decode() == stdlib_text(records())


async def test_async_write_stream_is_awaited() -> None:
    class AsyncFile:
        def __init__(self) -> None:
            self.parts: list[str] = []
            self.flushed = 0

        async def write(self, text: str) -> None:
            self.parts.append(text)

        async def flush(self) -> None:
            self.flushed += 1

    stream = AsyncFile()
    async with LogQueue(StreamHandler(stream)) as queue:
        for record in records():
            queue.put(record)
    assert "".join(stream.parts) == stdlib_text(records())
    assert stream.flushed >= 1


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_asyncio_stream_writer_over_a_real_socket() -> None:
    import asyncio

    received = bytearray()
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.read())
        writer.close()
        done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    async with LogQueue(StreamHandler(writer)) as queue:
        for record in records():
            queue.put(record)
    writer.close()
    await asyncio.wait_for(done.wait(), 5)
    server.close()
    assert received.decode() == stdlib_text(records())


async def test_set_stream_switches_and_returns_the_old_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    sink = StreamHandler(first)
    assert await sink.setStream(first) is None
    assert await sink.setStream(second) is first
    await sink.handle(records(1)[0])
    assert second.getvalue() == "line 0 é\n"
    assert first.getvalue() == ""


async def test_file_matches_the_stdlib_file(tmp_path: pathlib.Path) -> None:
    ours, theirs = tmp_path / "ours.log", tmp_path / "theirs.log"
    stdlib = logging.FileHandler(theirs, encoding="utf-8")
    for record in records(50):
        stdlib.handle(record)
    stdlib.close()
    async with LogQueue(FileHandler(ours, encoding="utf-8")) as queue:
        for record in records(50):
            queue.put(record)
    assert ours.read_bytes() == theirs.read_bytes()


async def test_file_attributes_mirror_the_stdlib(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a.log"
    ours = FileHandler(path, "w", encoding="latin-1", delay=True, errors="replace")
    theirs = logging.FileHandler(path, "w", encoding="latin-1", delay=True, errors="replace")
    for attribute in ("baseFilename", "mode", "encoding", "errors", "delay", "terminator"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    assert ours.stream is None
    assert not path.exists()  # delay: nothing opened yet
    await ours.handle(records(1)[0])
    assert path.read_bytes() == b"line 0 \xe9\n"
    await ours.close()


async def test_append_and_write_modes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.log"
    path.write_text("old\n")
    async with LogQueue(FileHandler(path)) as queue:
        queue.put(records(1)[0])
    assert path.read_text() == "old\nline 0 é\n"
    async with LogQueue(FileHandler(path, "w")) as queue:
        queue.put(records(1)[0])
    assert path.read_text() == "line 0 é\n"


def test_bad_paths_fail_at_construction(tmp_path: pathlib.Path) -> None:
    with pytest.raises(IsADirectoryError):
        FileHandler(tmp_path)
    with pytest.raises(IsADirectoryError, match="was given a directory, not a file"):
        FileHandler(tmp_path, delay=True)
    with pytest.raises(FileNotFoundError):
        FileHandler(tmp_path / "missing" / "x.log")
    with pytest.raises(ValueError, match=r"^FileHandler mode must open the file for writing"):
        FileHandler(tmp_path / "x.log", "r")


async def test_write_errors_are_reported_and_the_sink_carries_on(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = FileHandler(tmp_path / "e.log", encoding="ascii")  # é cannot be encoded
    async with LogQueue(sink) as queue:
        queue.put(records(1)[0])
        await queue.flush()
        queue.put(logging.LogRecord("s", logging.INFO, __file__, 3, "plain", None, None))
    assert queue.stats.sinks[0].errors == 1
    assert "UnicodeEncodeError" in capsys.readouterr().err
    assert (tmp_path / "e.log").read_text() == "plain\n"


async def test_file_is_closed_with_the_queue(tmp_path: pathlib.Path) -> None:
    sink = FileHandler(tmp_path / "c.log")
    stream = sink.stream
    async with LogQueue(sink):
        pass
    assert stream.closed
    assert sink.stream is None
    _ = os


async def test_null_handler_swallows_everything() -> None:
    sink = NullHandler()
    assert await sink.handle(records(1)[0]) is None  # the stdlib's NullHandler.handle
    async with LogQueue(sink) as queue:
        for record in records(10):
            queue.put(record)
        await queue.flush()
    assert queue.stats.sinks[0].emitted == 10
    _ = loopsink


async def test_after_a_disk_full_write_the_next_record_starts_a_line_and_losses_are_exact() -> None:
    """Once: 'phase1 0352 xxxx...phase2 0000 yyyy...', a torn line glued to the next (#19)."""
    from filesinks_support import fill_disk, tmpfs

    with tmpfs("64k") as folder:
        path = os.path.join(folder, "app.log")
        handler = loopsink.FileHandler(path)
        filler = os.path.join(folder, "filler")
        fill_disk(filler)
        os.truncate(filler, os.path.getsize(filler) - 8192)  # 8 KiB of room: 27 lines and a bit
        logging.raiseExceptions = False
        phase1 = [
            logging.makeLogRecord({"msg": f"phase1 {i:04d} " + "x" * 290}) for i in range(100)
        ]
        await handler.emit_batch(phase1)
        await handler.flush()
        os.remove(filler)
        phase2 = [logging.makeLogRecord({"msg": f"phase2 {i:04d} " + "y" * 10}) for i in range(5)]
        await handler.emit_batch(phase2)
        await handler.close()
        with open(path) as file:
            lines = file.read().splitlines()
    written1 = [line for line in lines if line.startswith("phase1 ")]
    assert all(len(line) == 302 for line in written1)  # none torn
    assert lines[len(written1) :] == [f"phase2 {i:04d} " + "y" * 10 for i in range(5)]
    # every phase-1 record missing from the file is counted, and only those
    assert handler.error_count == 100 - len(written1)
