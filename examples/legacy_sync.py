"""Old sync code, no event loop anywhere: loopsink's sinks through ``start_in_thread``.

The code below is what a Django or Flask app, a cron script or a worker looks like: plain
``logging.getLogger(...)`` calls from several threads, no ``async`` anywhere. One call at
start-up, ``loopsink.start_in_thread(...)``, runs the sinks on an event loop in a daemon
thread; every ``log.info`` just queues the record. The script ends without flushing or
closing anything: Python's exit runs ``logging.shutdown()``, which drains the queue (within
its ``timeout``) before the process ends.

To show the result, the script re-runs itself as a child process and counts the lines the
child wrote. Run it with ``python examples/legacy_sync.py``; it takes about a second.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import loopsink

THREADS = 4
PER_THREAD = 5_000


def legacy_program(log_file: str) -> None:
    """What an existing program does, plus the one line that sets loopsink up."""
    sink = loopsink.FileHandler(log_file)
    sink.setFormatter(logging.Formatter("%(threadName)s %(levelname)s %(message)s"))
    loopsink.start_in_thread(sink, level=logging.INFO)  # the one new line
    logging.getLogger().setLevel(logging.INFO)

    log = logging.getLogger("legacy")

    def job(n: int) -> None:
        for i in range(PER_THREAD):
            log.info("job %d step %d", n, i)

    workers = [threading.Thread(target=job, args=(n,), name=f"worker-{n}") for n in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.warning("all jobs done; exiting without flushing anything")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        legacy_program(sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "legacy.log"
        subprocess.run([sys.executable, __file__, "--child", str(log_file)], check=True)
        lines = log_file.read_text().splitlines()
    print(f"the child process exited; {len(lines)} lines are on disk. The last one:")
    print("  " + lines[-1])
    assert len(lines) == THREADS * PER_THREAD + 1, len(lines)


if __name__ == "__main__":
    main()
