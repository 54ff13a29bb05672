"""The pidfd child watcher: a subprocess's exit reaches the loop that started it, with no thread."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from manager.training.child_watcher import pidfd_works, use_pidfd_child_watcher

pytestmark = pytest.mark.skipif(not pidfd_works(), reason="this system has no pidfds (Linux 5.3+)")


async def exit_code(script: str) -> int:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    return await process.wait()


def test_a_child_exit_is_heard_with_its_status() -> None:
    assert use_pidfd_child_watcher()
    assert asyncio.run(exit_code("raise SystemExit(3)")) == 3
    assert asyncio.run(exit_code("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")) == -15


def test_waiting_for_children_starts_no_thread() -> None:
    use_pidfd_child_watcher()

    async def many() -> tuple[list[int], int]:
        started = [asyncio.create_task(exit_code("import time; time.sleep(0.2)")) for _ in range(4)]
        await asyncio.sleep(0.1)  # the children run: a thread per child would show now
        threads = threading.active_count()
        return list(await asyncio.gather(*started)), threads

    before = threading.active_count()
    codes, during = asyncio.run(many())
    assert codes == [0, 0, 0, 0]
    assert during == before


def test_loops_in_two_threads_each_hear_their_own_children() -> None:
    use_pidfd_child_watcher()
    heard: dict[str, int] = {}

    def in_thread() -> None:
        heard["thread"] = asyncio.run(exit_code("raise SystemExit(5)"))

    other = threading.Thread(target=in_thread)
    other.start()
    heard["main"] = asyncio.run(exit_code("raise SystemExit(7)"))
    other.join(timeout=30)
    assert heard == {"thread": 5, "main": 7}
