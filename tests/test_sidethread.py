"""SideThread: a sink's own thread for blocking jobs, whose outcome the loop looks for."""

from __future__ import annotations

import threading

import anyio
import pytest

from loopsink._sidethread import SideThread

pytestmark = pytest.mark.timeout(20)


async def test_jobs_run_in_one_thread_in_order_and_return_their_results() -> None:
    side = SideThread("test side")
    seen: list[tuple[int, int]] = []

    def job(number: int) -> int:
        seen.append((number, threading.get_ident()))
        return number * 10

    results = [await side.run(job, n) for n in range(5)]
    side.stop()
    assert results == [0, 10, 20, 30, 40]
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert len({thread for _, thread in seen}) == 1
    assert seen[0][1] != threading.get_ident()


async def test_a_job_that_raises_raises_in_the_caller_as_itself() -> None:
    side = SideThread("test side")

    def fail() -> None:
        raise OSError("the disk is gone")

    with pytest.raises(OSError, match=r"^the disk is gone$"):
        await side.run(fail)
    assert await side.run(lambda: "still serving") == "still serving"
    side.stop()


async def test_the_loop_runs_while_a_job_waits() -> None:
    side = SideThread("test side")
    release = threading.Event()
    ticks = 0

    async def waiting_job() -> None:
        await side.run(release.wait, 5)

    with anyio.fail_after(2):  # a job run on the loop would block it for 5 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiting_job)
            while ticks < 20:  # 20 passes of a 1 ms timer while the thread waits
                ticks += 1
                await anyio.sleep(0.001)
            assert not release.is_set()
            release.set()
    side.stop()


async def test_cancelling_the_caller_leaves_the_job_to_finish() -> None:
    side = SideThread("test side")
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def job() -> None:
        started.set()
        release.wait(5)
        finished.set()

    with anyio.move_on_after(0.05):
        await side.run(job)
    assert started.is_set()
    assert not finished.is_set()
    release.set()
    assert await side.run(lambda: finished.is_set()) is True  # the next job runs after it
    side.stop()


async def test_a_stopped_side_thread_starts_anew_for_the_next_job() -> None:
    side = SideThread("test side")
    first = await side.run(threading.get_ident)
    side.stop()
    second = await side.run(threading.get_ident)
    side.stop()
    assert first != second
