"""
An asyncio event loop on the emulator's clock, so trigger tests follow jobs through their stages
without sleeping through them.

Tests opt in with ``@pytest.mark.emulated_time`` (pytest-asyncio runs them on this loop, see
``tests/conftest.py``) or run a coroutine with :func:`run`. While the loop runs, its
:class:`LoopClock` is the package's default clock (:func:`airflow_autopilot.core.clock.clock_in_use`),
so every wait, trigger and poller started on it paces itself by the loop's jumping time. Only for
waits that have no wall-clock deadline: a trigger's ``timeout_at`` is compared with the real time.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

from aiobotocore.httpsession import AIOHTTPSession

from airflow_autopilot.core.clock import clock_in_use
from airflow_autopilot.emulator import settings

T = TypeVar("T")


class EmulatedTimeLoop(asyncio.SelectorEventLoop):
    """
    An event loop whose clock jumps forward instead of sleeping.

    When the loop would wait for its next timer with nothing else to wait for (no callback ready,
    no socket readable, no AWS request awaiting its response, no executor job running), it moves
    its own clock and the emulator's (:func:`airflow_autopilot.emulator.settings.advance_time`) to
    that timer at once. Otherwise it is a normal loop: real sockets, real threads, and real time
    passes on both clocks too, so an in-flight request never sees a timer fire early.
    """

    def __init__(self) -> None:
        self.skipped = 0.0
        self._requests = 0
        self._executor_jobs = 0
        self.clock = LoopClock(self)
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return super().time() + self.skipped

    def run_forever(self) -> None:
        with clock_in_use(self.clock):
            super().run_forever()

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    async def shutdown_default_executor(self, *args: Any) -> None:
        # The executor's threads are joined by a thread of its own, which the loop cannot see: on
        # Python 3.12+ the join's timeout (300 s) would otherwise pass at once and warn.
        self._executor_jobs += 1
        try:
            await super().shutdown_default_executor(*args)
        finally:
            self._executor_jobs -= 1

    @property
    def busy(self) -> bool:
        """Something the loop cannot see on its own clock is running: a request or a thread job."""
        return self._requests > 0 or self._executor_jobs > 0

    def jump(self, seconds: float) -> None:
        self.skipped += seconds
        settings.advance_time(seconds)


class LoopClock:
    """
    The :class:`~airflow_autopilot.core.clock.Clock` of an :class:`EmulatedTimeLoop`: the loop's
    own (jumping) time for pacing and ``asyncio.sleep`` for sleeps, which jump with it; the wall
    clock for ``now()``, so deadlines and grace periods stay in real time.

    :param loop: the loop.
    """

    def __init__(self, loop: EmulatedTimeLoop) -> None:
        self._loop = loop

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return self._loop.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: EmulatedTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0 or self._loop.busy:
            return super().select(timeout)
        ready = super().select(0)
        if not ready:
            self._loop.jump(timeout)
        return ready


_send = AIOHTTPSession.send


async def _counted_send(self: AIOHTTPSession, request: Any) -> Any:
    """aiobotocore's HTTP send, counted as in flight on an emulated-time loop."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, EmulatedTimeLoop):
        return await _send(self, request)
    loop._requests += 1
    try:
        return await _send(self, request)
    finally:
        loop._requests -= 1


AIOHTTPSession.send = _counted_send


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on an :class:`EmulatedTimeLoop`."""
    loop = EmulatedTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
