"""Background asyncio tasks kept until done, drained with a deadline, cancelled on close.

Shared by the sandbox's callback delivery and ``listen``'s forwarding: both answer a request
first and send in the background. The event loop keeps only weak references to tasks, so the
set holds them until each finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine


class TaskSet:
    """The fire-and-forget tasks one owner started, so that it can wait for them or stop them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        """Run ``coro`` on the running loop; the task leaves the set when it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Wait until every task, including ones spawned meanwhile, has finished, or ``timeout`` s."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def cancel(self) -> None:
        """Cancel every task and wait for each to end; how a task ended does not matter here."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
