"""One named asyncio task that a part of the proxy runs for its whole life: started once, cancelled on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[Any] | None = None

    def start(self, run: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def worth_logging(failures: int) -> bool:
    """Log the 1st, 10th and every 100th failure in a row: a long outage is reported, not repeated every pass."""
    return failures in (1, 10) or failures % 100 == 0


async def repeat(
    step: Callable[[], Awaitable[Any]],
    interval: float | Callable[[], float],
    on_failure: Callable[[Exception, int], None],
    on_success: Callable[[], None] | None = None,
) -> None:
    """Run `step`, then wait `interval` seconds, for ever (until cancelled). A failing step is handed to `on_failure`
    with how many failed in a row, and the loop goes on."""
    failures = 0
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            on_failure(exc, failures)
        else:
            failures = 0
            if on_success is not None:
                on_success()
        await asyncio.sleep(interval() if callable(interval) else interval)
