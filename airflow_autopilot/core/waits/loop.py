"""The blocking and the asyncio loops that drive a wait machine: poll, feed the result, sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from airflow_autopilot.core.waits.machine import Finished, Sleep, WaitMachine

T = TypeVar("T")


def drive(
    machine: WaitMachine[T],
    poll: Callable[[], T],
    *,
    between: Callable[[T], object] | None = None,
    sleep: Callable[[float], object] | None = None,
) -> T:
    """
    Run ``machine`` in the calling thread until it finishes; return the subject or raise.

    :param machine: the wait's state machine.
    :param poll: makes one call (a describe) and returns its result.
    :param between: called with the result of each poll that keeps the wait going.
    :param sleep: sleeps between polls (default: the machine's clock).
    """
    sleep = sleep or machine.clock.sleep
    while True:
        try:
            subject = poll()
        except Exception as err:
            step = machine.on_error(err)
        else:
            step = machine.on_result(subject)
            if between is not None and isinstance(step, Sleep):
                between(subject)
        if isinstance(step, Finished):
            return step.outcome()
        sleep(step.seconds)


async def drive_async(
    machine: WaitMachine[T],
    poll: Callable[[], Awaitable[T]],
    *,
    between: Callable[[T], Awaitable[object]] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
) -> Finished[T]:
    """
    Run ``machine`` on the event loop until it finishes; return how it finished (never raises for
    a poll's error: that becomes an ``error`` result).

    :param machine: the wait's state machine.
    :param poll: makes one call and returns its result.
    :param between: awaited with the result of each poll that keeps the wait going.
    :param sleep: awaited with each step's delay (default: the machine's clock).
    """
    sleep = sleep or machine.clock.sleep_async
    while True:
        try:
            # Bounded by the time left, so nothing a poll awaits holds the wait past its deadline
            # (the calls themselves are cut sooner: see attempt_seconds).
            budget = machine.call_budget()
            subject = await (poll() if budget is None else asyncio.wait_for(poll(), timeout=budget))
        except Exception as err:
            step = machine.on_error(err)
        else:
            step = machine.on_result(subject)
            if between is not None and isinstance(step, Sleep):
                await between(subject)
        if isinstance(step, Finished):
            return step
        await sleep(step.seconds)
