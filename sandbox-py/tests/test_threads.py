"""A multi-threaded host: the GIL is released while commands run, so
threads spawn and wait concurrently."""
import os
from concurrent.futures import ThreadPoolExecutor

import stockade


def test_eight_threads_spawn_concurrently(workdir):
    # Every command waits until all eight have started: only passes if the
    # eight threads are inside `run` at the same time.
    sb = stockade.Sandbox(rw=[workdir])
    script = (
        "touch {d}/{i}; n=0; while [ $(ls {d} | wc -l) -lt 8 ]; do n=$((n+1)); "
        "[ $n -gt 600 ] && exit 9; sleep 0.05; done; echo {i}"
    )
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: sb.run(["sh", "-c", script.format(d=workdir, i=i)]), range(8)))
    assert [r.exit_code for r in results] == [0] * 8
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(8)]


def test_threads_mix_sandboxes_sessions_and_spawns():
    sb = stockade.Sandbox()
    with sb.session() as s:
        def work(i):
            if i % 3 == 0:
                return sb.run(["echo", str(i)]).stdout
            if i % 3 == 1:
                return s.run(["echo", str(i)]).stdout
            return sb.spawn(["echo", str(i)]).communicate()[0]

        with ThreadPoolExecutor(8) as ex:
            out = list(ex.map(work, range(48)))
    assert out == [f"{i}\n".encode() for i in range(48)]
