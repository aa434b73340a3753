"""Fork is a supported event (#19, #22): a child's bridge delivers the child's records.

Each case runs in a fresh interpreter (forking pytest's own process, which runs threads,
is what the tests must not do), and checks every line of parent and children exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers.processes import (
    DEADLINE,
    WSGI_APP,
    assert_each_request_logged_once,
    assert_no_line_twice,
    free_port,
    get_status,
    kill_if_running,
    python_command,
    run_python,
    terminate,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

PRELUDE = """
import json, logging, logging.config, multiprocessing, os, sys
import loopsink
path, count, route, how = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if route == "start_in_thread":
    loopsink.start_in_thread(
        loopsink.FileHandler(path, mode="w"), level=logging.INFO
    )
    logging.getLogger().setLevel(logging.INFO)
else:
    logging.config.dictConfig({
        "version": 1,
        "handlers": {"ls": {
            "()": "loopsink.config.bridge",
            "start": "thread",
            "sinks": [{"class": "FileHandler", "filename": path, "mode": "w"}],
        }},
        "root": {"level": "INFO", "handlers": ["ls"]},
    })
log = logging.getLogger("app")
for i in range(count):
    log.info("parent-before %d", i)

def child(tag):
    for i in range(count):
        log.info("%s %d", tag, i)
"""

SCRIPT = (
    PRELUDE
    + """
if how == "multiprocessing":
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=child, args=(f"child{k}",)) for k in range(2)]
    for process in children:
        process.start()
    for process in children:
        process.join(60)
        assert process.exitcode == 0, process.exitcode
else:  # a plain fork, a child that exits normally (atexit, logging.shutdown)
    pid = os.fork()
    if pid == 0:
        child("child0")
        sys.exit(0)
    assert os.waitpid(pid, 0)[1] == 0
for i in range(count):
    log.info("parent-after %d", i)
"""
)


def run_script(tmp_path: Path, count: int, route: str, how: str) -> tuple[list[str], float]:
    out = tmp_path / "out.log"
    start = time.monotonic()
    done = run_python(SCRIPT, str(out), str(count), route, how)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", done.stderr[-3000:]
    return out.read_text().splitlines(), elapsed


def assert_each_once(lines: list[str], tags: list[str], count: int) -> None:
    assert_no_line_twice(lines)
    expected = {f"{tag} {i}" for tag in tags for i in range(count)}
    assert set(lines) == expected, (len(expected - set(lines)), sorted(set(lines) - expected)[:5])


@pytest.mark.parametrize("route", ["start_in_thread", "dictConfig"])
@pytest.mark.parametrize("count", [100, 20_000])
def test_multiprocessing_fork_children_deliver_every_record_once(
    tmp_path: Path, route: str, count: int
) -> None:
    """Once: 100 records per child written 0 times, 20,000 hung the child."""
    lines, elapsed = run_script(tmp_path, count, route, "multiprocessing")
    assert_each_once(lines, ["parent-before", "child0", "child1", "parent-after"], count)
    assert elapsed < 30


@pytest.mark.parametrize("route", ["start_in_thread", "dictConfig"])
def test_a_plain_fork_child_that_exits_normally_does_not_hang(tmp_path: Path, route: str) -> None:
    """Once: the child's logging.shutdown() waited forever for the parent's queue thread."""
    lines, elapsed = run_script(tmp_path, 100, route, "fork")
    assert_each_once(lines, ["parent-before", "child0", "parent-after"], 100)
    assert elapsed < 30


BUFFERED = """
import logging, os, sys
import loopsink
path = sys.argv[1]
sink = loopsink.FileHandler(path)
handle = loopsink.start_in_thread(sink, level=logging.INFO)
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("app")
log.info("parent-before")
handle.flush(10)
# The sink's writer thread caught between its write and its flush when the process forks:
# the file object holds text that only the parent may write.
sink.stream.write("parent-buffered\\n")
pid = os.fork()
if pid == 0:
    log.info("child")
    logging.shutdown()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
sink.stream.flush()
log.info("parent-after")
"""


def test_a_child_never_writes_what_the_parents_file_object_held(tmp_path: Path) -> None:
    """Once, now and then under load: the child flushed the parent's buffered text again."""
    out = tmp_path / "out.log"
    done = run_python(BUFFERED, str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = out.read_text().splitlines()
    assert sorted(lines) == ["child", "parent-after", "parent-before", "parent-buffered"]


#: For the scripts below: wait for a forked child to exit, or kill it and fail.
WAIT_FOR_CHILD = """
import os, sys, threading, time


def wait_for_child(pid, seconds):
    deadline = time.monotonic() + seconds
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            sys.exit("the child hung")
        threading.Event().wait(0.01)
"""

STALLED = (
    WAIT_FOR_CHILD
    + """
import fcntl, logging, os, sys, termios, threading, time
import loopsink
fifo = sys.argv[1]
os.mkfifo(fifo)
reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # reads nothing until the fork is over
sink = loopsink.FileHandler(fifo)
handle = loopsink.start_in_thread(sink, level=logging.INFO)
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("app")
capacity = fcntl.fcntl(reader, 1032)  # F_GETPIPE_SZ
line = "x" * 200
for i in range(capacity // 100):  # twice what the pipe holds
    log.info("parent %d %s", i, line)

def queued():
    return int.from_bytes(fcntl.ioctl(reader, termios.FIONREAD, bytes(4)), "little")

deadline = time.monotonic() + 20
while queued() < capacity:  # the pipe is full: the sink's thread is blocked in its write
    assert time.monotonic() < deadline, "the pipe never filled"
    threading.Event().wait(0.01)
pid = os.fork()  # the sink's thread holds the file object's lock, mid-write
if pid == 0:
    log.info("child")
    logging.shutdown()
    os._exit(0)
drained = []

def drain():
    os.set_blocking(reader, True)
    while chunk := os.read(reader, 65536):
        drained.append(chunk)

drainer = threading.Thread(target=drain, daemon=True)
drainer.start()
wait_for_child(pid, 20)
handle.close(20)
drainer.join(20)
lines = b"".join(drained).decode().splitlines()
assert lines.count("child") == 1, lines[-3:]
assert len(lines) == capacity // 100 + 1, len(lines)
"""
)


@pytest.mark.skipif(sys.platform != "linux", reason="F_GETPIPE_SZ and FIONREAD: Linux")
def test_a_child_forked_while_the_sink_writes_does_not_hang(tmp_path: Path) -> None:
    """Once, now and then under load: the sink's thread was inside a write (a slow disk, a
    full pipe) when the process forked, holding the file object's lock; the child flushed
    its copy of the file object to let go of it, waited for that lock, and hung forever."""
    done = run_python(STALLED, str(tmp_path / "fifo"))
    assert done.returncode == 0, done.stderr[-3000:]


MID_WRITE = (
    WAIT_FOR_CHILD
    + """
import logging, os, sys, threading, time
import loopsink

out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
inside = threading.Event()


class SlowStream:
    # A stream with a lock of its own around each write, as a BufferedWriter has.
    def __init__(self):
        self.lock = threading.Lock()

    def write(self, text):
        with self.lock:
            inside.set()
            time.sleep(0.1)  # a slow device, the lock held meanwhile
            os.write(out, text.encode())

    def flush(self):
        with self.lock:
            pass


handle = loopsink.start_in_thread(loopsink.StreamHandler(SlowStream()), level=logging.INFO)
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("app")
log.info("parent-before")
assert inside.wait(20), "the sink never wrote"
pid = os.fork()  # the sink's thread is inside a write, the stream's lock held
if pid == 0:
    log.info("child")
    logging.shutdown()
    os._exit(0)
wait_for_child(pid, 30)
log.info("parent-after")
handle.close(20)
"""
)


def test_a_child_forked_mid_write_can_write_to_the_same_stream(tmp_path: Path) -> None:
    """A StreamHandler's thread was inside a write to the stream (``sys.stderr``, say) when
    the process forked: the child's copy of the stream had its lock held by a thread that
    did not come along, the child's own records waited for it, and at exit the child gave up
    on them. A fork now waits for the write in progress."""
    out = tmp_path / "out.log"
    done = run_python(MID_WRITE, str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = out.read_text().splitlines()
    assert sorted(lines) == ["child", "parent-after", "parent-before"], done.stderr[-3000:]


LISTENING = """
import logging, os, queue, threading, time
import anyio
import loopsink


async def main():
    listener = loopsink.QueueListener(queue.Queue(), logging.NullHandler())
    await listener.start()
    deadline = time.monotonic() + 10
    while not any(t.name == "loopsink-QueueListener" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the listener never waited on its queue"
        await anyio.sleep(0.01)
    took = 0.0
    for _ in range(5):
        start = time.perf_counter()
        pid = os.fork()  # the listener's thread waits on the empty queue meanwhile
        if pid == 0:
            os._exit(0)
        took += time.perf_counter() - start
        os.waitpid(pid, 0)
        await anyio.sleep(0.02)  # the listener's task hands its next wait to the thread
    await listener.stop()
    assert took < 0.25, f"five forks took {took:.3f} s"


anyio.run(main)
"""


def test_a_fork_does_not_wait_for_a_listener_waiting_on_its_queue() -> None:
    """A fork waits for the write an I/O thread is in; not for a QueueListener's thread
    waiting on an empty queue (each wait lasts up to LISTENER_POLL, 0.2 s: five forks
    would take most of a second)."""
    done = run_python(LISTENING)
    assert done.returncode == 0, done.stderr[-3000:]


# -- gunicorn --preload, sync workers ------------------------------------------------------------

APP = (
    WSGI_APP
    + """
import loopsink

# at import, in the arbiter: the common deployment with --preload
loopsink.start_in_thread(loopsink.FileHandler(os.environ["APP_LOG"]), level=logging.INFO)
logging.getLogger().setLevel(logging.INFO)
log.info("master %d", os.getpid())
"""
)


def test_gunicorn_preload_sync_workers_log_every_line_once(tmp_path: Path) -> None:
    """Once: preloaded workers froze after ~3,300 requests and lost 19,993 of 20,000 lines."""
    pytest.importorskip("gunicorn")
    (tmp_path / "forkapp.py").write_text(APP)
    log_path = tmp_path / "app.log"
    port = free_port()
    env = {**os.environ, "APP_LOG": str(log_path), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(
        python_command(
            "-m",
            "gunicorn",
            "--preload",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "20",
            "forkapp:app",
        ),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                assert get_status(port, "/warmup", timeout=10) == 200
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)  # gunicorn is starting: nothing to wait on but the port
        requests = 400
        for i in range(requests):
            assert get_status(port, f"/r{i}", timeout=10) == 200
        err, shutdown = terminate(proc)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, err[-3000:]
    assert "WORKER TIMEOUT" not in err
    lines = log_path.read_text().splitlines()
    assert_no_line_twice(lines)
    masters = [line for line in lines if line.startswith("master ")]
    assert len(masters) == 1
    assert_each_request_logged_once(lines, requests)
    assert shutdown < 5.0, f"SIGTERM took {shutdown:.1f} s"
