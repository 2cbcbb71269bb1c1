"""The runtime's worker threads for database work: a few at once, whatever the load."""

from __future__ import annotations

import threading
import time

import anyio

from portal.runtime import Runtime, db_threads


def test_database_work_runs_in_a_few_threads_at_once(rt: Runtime) -> None:
    limit = db_threads(rt.engine)
    assert limit == (1 if rt.engine.dialect.name == "sqlite" else 4)
    lock = threading.Lock()
    running = peak = 0

    def work() -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return threading.current_thread().name

    async def many() -> list[str]:
        names: list[str] = []

        async def one() -> None:
            names.append(await rt.in_db_thread(work))

        async with anyio.create_task_group() as group:
            for _ in range(4 * limit):
                group.start_soon(one)
        return names

    names = anyio.run(many)
    assert len(names) == 4 * limit
    assert peak == limit  # busy up to the limit, never past it
    assert threading.current_thread().name not in names  # off the event loop's thread
