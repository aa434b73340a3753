"""A sync program that never runs an event loop: start_in_thread, then just exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

THREADS = 4
PER_THREAD = 25_000

SCRIPT = textwrap.dedent(
    f"""
    import logging, sys, threading
    import loopsink

    sink = loopsink.FileHandler(sys.argv[1])
    sink.setFormatter(logging.Formatter("%(name)s %(threadName)s %(message)s"))
    loopsink.start_in_thread(sink)  # default overflow "block": a burst waits, never drops
    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("legacy")

    def work(tag):
        for i in range({PER_THREAD}):
            log.info("%s %d", tag, i)

    threads = [
        threading.Thread(target=work, args=(f"t{{n}}",), name=f"w{{n}}") for n in range({THREADS})
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # no flush, no close: Python's exit runs logging.shutdown(), which must drain the queue
    """
)


def test_script_logging_100k_records_from_4_threads_loses_none(tmp_path: Path) -> None:
    log_file = tmp_path / "legacy.log"
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SCRIPT, str(log_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    all_lines = log_file.read_text().splitlines()
    lines = [line.removeprefix("legacy ") for line in all_lines if line.startswith("legacy ")]
    # Under -X dev asyncio's debug mode may warn of a slow step while four threads fight the
    # loop's thread for the GIL; such a warning, logged on the loop's thread, is dropped
    # when it finds the intake full (that thread cannot block) and the drop is summarised.
    others = {line.split(" ", 1)[0] for line in all_lines if not line.startswith("legacy ")}
    assert others <= {"asyncio", "loopsink"}, others
    expected = [f"w{n} t{n} {i}" for n in range(THREADS) for i in range(PER_THREAD)]
    counts = Counter(lines)
    assert len(lines) == THREADS * PER_THREAD
    assert counts == Counter(expected)  # every record exactly once
    # and in order per producing thread
    for n in range(THREADS):
        mine = [line for line in lines if line.startswith(f"w{n} ")]
        assert mine == [f"w{n} t{n} {i}" for i in range(PER_THREAD)]
