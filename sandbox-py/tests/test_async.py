"""asyncio: run_async never blocks the loop, runs many sandboxes at once,
and cancelling the awaiting task kills the sandboxed tree."""
import asyncio
import os

import pytest

import stockade
from conftest import host_processes, marker_sleep, wait_until


def test_run_async_positive_control():
    async def main():
        return await stockade.Sandbox().run_async(["sh", "-c", "echo $((6*7))"])

    r = asyncio.run(main())
    assert r.exit_code == 0 and r.stdout == b"42\n"


def test_fifty_concurrent_runs(workdir):
    # Each command waits (inside the sandbox, up to 60 s) until all 50 have
    # started: the run only passes if the 50 sandboxes really run at once.
    sb = stockade.Sandbox(rw=[workdir])
    barrier = (
        f"touch {workdir}/$ID; i=0; "
        f"while [ $(ls {workdir} | wc -l) -lt 50 ]; do i=$((i+1)); "
        f"[ $i -gt 1200 ] && exit 9; sleep 0.05; done; echo $ID"
    )

    async def main():
        return await asyncio.gather(
            *(sb.run_async(["sh", "-c", f"ID={i}; {barrier}"]) for i in range(50))
        )

    results = asyncio.run(main())
    assert [r.exit_code for r in results] == [0] * 50, [r.stderr for r in results if r.exit_code]
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(50)]
    assert len(os.listdir(workdir)) == 50


def test_the_event_loop_keeps_running_while_sandboxes_run():
    ticks = []

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)

    async def main():
        stop = asyncio.Event()
        t = asyncio.create_task(ticker(stop))
        r = await stockade.Sandbox().run_async(["sleep", "1"])
        stop.set()
        await t
        return r

    r = asyncio.run(main())
    assert r.exit_code == 0
    # A blocked loop would tick once or twice during the second of sleep.
    assert len(ticks) >= 20, len(ticks)


def test_cancellation_kills_the_sandboxed_tree():
    length = marker_sleep(2)

    async def main():
        task = asyncio.create_task(
            stockade.Sandbox().run_async(["sh", "-c", f"sleep {length} & sleep {length}; echo never"])
        )
        await asyncio.get_running_loop().run_in_executor(
            None, wait_until, lambda: len(host_processes(f"sleep {length}")) == 2, "both sleeps run"
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # The cancellation returned only once the tree was gone.
    assert host_processes(f"sleep {length}") == []


def test_wait_for_timeout_kills_the_tree():
    length = marker_sleep(3)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stockade.Sandbox().run_async(["sleep", length]), 0.5)

    asyncio.run(main())
    assert host_processes(f"sleep {length}") == []


def test_cancel_right_after_start():
    async def main():
        task = asyncio.create_task(stockade.Sandbox().run_async(["sleep", "60"]))
        await asyncio.sleep(0)  # let it start the job
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_run_async_errors_are_the_same_exceptions():
    async def main():
        with pytest.raises(stockade.NotFoundError):
            await stockade.Sandbox().run_async(["/no/such/program"])
        with pytest.raises(stockade.PolicyError):
            await stockade.Sandbox().run_async("not a list")

    asyncio.run(main())


def test_async_session():
    async def main():
        async with stockade.Sandbox().session() as s:
            await s.run_async(["sh", "-c", "echo kept > /tmp/f"])
            r = await s.run_async(["cat", "/tmp/f"])
            results = await asyncio.gather(*(s.run_async(["echo", str(i)]) for i in range(10)))
            return r, results, s

    r, results, s = asyncio.run(main())
    assert r.stdout == b"kept\n"
    assert [x.stdout for x in results] == [f"{i}\n".encode() for i in range(10)]
    with pytest.raises(stockade.SandboxIOError, match="closed"):
        s.run(["true"])


def test_async_session_cancellation_kills_only_that_command():
    length = marker_sleep(4)

    async def main():
        async with stockade.Sandbox().session() as s:
            task = asyncio.create_task(s.run_async(["sleep", length]))
            await asyncio.get_running_loop().run_in_executor(
                None, wait_until, lambda: len(host_processes(f"sleep {length}")) == 1, "sleep runs"
            )
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gone = host_processes(f"sleep {length}") == []
            after = await s.run_async(["echo", "still here"])
            return gone, after

    gone, after = asyncio.run(main())
    assert gone
    assert after.stdout == b"still here\n"
