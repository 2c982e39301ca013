"""The coalesced poller: one ListAutoMLJobs-driven poller per event loop and connection serves
every waiting trigger (design and bounds: docs/sensor.md, Coalesced polling).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_autopilot.aio.clients import describe_job
from airflow_autopilot.core.errors import is_transient
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria

log = logging.getLogger(__name__)

#: Summaries per ListAutoMLJobs page (the API's maximum).
LIST_PAGE_SIZE = 100
#: How far each list window reaches back before the previous cycle, for clock skew.
DEFAULT_OVERLAP_SECONDS = 10.0
#: The first list window, before any server time is known, reaches this far back on the local clock.
INITIAL_LOOKBACK_SECONDS = 120.0
#: One periodic full check per this many watched jobs, per cycle.
DEFAULT_ROUND_ROBIN_DIVISOR = 200
#: A job whose last describe is older than this is due for a full check.
DEFAULT_FULL_CHECK_SECONDS = 600.0
#: Concurrent DescribeAutoMLJob calls of one poller.
MAX_CONCURRENT_DESCRIBES = 16

Hint = Callable[[AutopilotJob], object]


@dataclass(frozen=True)
class _Listed:
    """A job's state as a ListAutoMLJobs summary showed it (progress only, never a verdict)."""

    job: AutopilotJob


@dataclass(eq=False)
class Watch:
    """
    One trigger's registration with a :class:`CoalescedPoller`.

    The poller only queues what it learns; the waiting trigger's own task reads it in :meth:`next`,
    so every log line about the job is written in that trigger's context (its task log).

    :param job_name: the AutoMLJobName.
    :param criteria: the trigger's wait criteria (decides which summaries deserve a describe).
    :param poll_interval: the trigger's poll interval; the poller cycles at the smallest one.
    :param on_hint: called, inside :meth:`next`, with a summary-based :class:`AutopilotJob` when the
        list shows a change.
    """

    job_name: str
    criteria: WaitCriteria
    poll_interval: float
    on_hint: Hint | None = None
    _items: deque[AutopilotJob | BaseException | _Listed] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, item: AutopilotJob | BaseException | _Listed) -> None:
        """Queue a describe result (or its error), or a list summary (from the poller)."""
        self._items.append(item)
        self._ready.set()

    async def next(self) -> AutopilotJob:
        """
        The next DescribeAutoMLJob result for this job (raises the describe's error, if any); list
        summaries queued before it go to ``on_hint`` first. Safe to cancel: nothing is lost.
        """
        while True:
            result = await self.next_or_progress()
            if result is not None:
                return result

    async def next_or_progress(self) -> AutopilotJob | None:
        """
        Like :meth:`next`, but also returns ``None`` once list summaries (progress only) were handed
        to ``on_hint`` and no describe result is queued: the waiter gets a turn to act on them.
        """
        while True:
            hinted = False
            while self._items:
                item = self._items.popleft()
                if isinstance(item, _Listed):
                    if self.on_hint is not None:
                        self.on_hint(item.job)
                    hinted = True
                    continue
                if any(not isinstance(later, _Listed) for later in self._items):
                    continue  # a newer describe result is queued: only the newest matters
                if isinstance(item, BaseException):
                    raise item
                return item
            if hinted:
                return None
            self._ready.clear()
            await self._ready.wait()


@dataclass
class PollerStats:
    """Calls made by a poller, for tests and the bench."""

    cycles: int = 0
    list_calls: int = 0
    describe_calls: int = 0
    list_failures: int = 0


class CoalescedPoller:
    """
    Polls many Autopilot jobs with few calls; see the module docstring.

    The poller opens no client of its own: it uses the (shared) client its watchers hold, so it
    lives exactly as long as someone waits.

    :param overlap_seconds: how far each list window reaches back before the newest change seen.
    :param round_robin_divisor: at most one periodic full check per this many watched jobs, per cycle.
    :param full_check_seconds: a job not described for this long is due for a full check.
    """

    def __init__(
        self,
        *,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        round_robin_divisor: int = DEFAULT_ROUND_ROBIN_DIVISOR,
        full_check_seconds: float = DEFAULT_FULL_CHECK_SECONDS,
    ) -> None:
        self.overlap = timedelta(seconds=overlap_seconds)
        self.round_robin_divisor = max(1, round_robin_divisor)
        self.full_check_seconds = full_check_seconds
        self.stats = PollerStats()
        #: Set when ListAutoMLJobs fails for good; the poller then describes every job each cycle.
        self.list_disabled = False
        self._watches: dict[str, list[Watch]] = {}
        self._due: set[str] = set()
        self._described_at: dict[str, float] = {}
        self._list_since: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._wake = asyncio.Event()

    @property
    def watched(self) -> int:
        return len(self._watches)

    @asynccontextmanager
    async def watch(
        self,
        job_name: str,
        criteria: WaitCriteria,
        poll_interval: float,
        on_hint: Hint | None = None,
        *,
        client: Any,
        described: bool = False,
    ) -> AsyncIterator[Watch]:
        """
        Register a job for the life of the ``async with`` block; the first describe comes next cycle.

        :param job_name: the AutoMLJobName.
        :param criteria: the trigger's wait criteria.
        :param poll_interval: the trigger's poll interval in seconds.
        :param on_hint: progress callback for summary-based updates, called in the watcher's task.
        :param client: the aiobotocore SageMaker client the caller holds open for the whole block
            (every watcher of one poller holds the same shared client).
        :param described: the caller has just described the job itself: no describe is due yet.
        """
        self._client = client
        watch = Watch(job_name, criteria, poll_interval, on_hint)
        first = job_name not in self._watches
        self._watches.setdefault(job_name, []).append(watch)
        if first:
            self._described_at[job_name] = time.monotonic() if described else -math.inf
        if not described:
            self._due.add(job_name)
        if self._task is None or self._task.done():
            # An empty context: the poller is nobody's task, so its own log lines (list failures)
            # go to the triggerer's log, not to the log of whichever trigger happened to start it.
            self._task = contextvars.Context().run(
                asyncio.create_task, self._run(), name="autopilot-coalesced-poller"
            )
        elif not described:
            self._wake.set()  # its first describe is due: do not wait for the next cycle
        try:
            yield watch
        finally:
            watches = self._watches.get(job_name, [])
            if watch in watches:
                watches.remove(watch)
            if not watches:
                self._watches.pop(job_name, None)
                self._due.discard(job_name)
                self._described_at.pop(job_name, None)
            if not self._watches:
                self._client = None
                self._wake.set()  # let the loop end now rather than after its sleep

    def _interval(self) -> float:
        return min((w.poll_interval for ws in self._watches.values() for w in ws), default=60.0)

    def _fail_all(self, err: BaseException) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.put(err)

    async def _run(self) -> None:
        while self._watches:
            try:
                await self.cycle(self._client)
            except Exception as err:  # a non-transient list error: each trigger decides
                self._fail_all(err)
            self._wake.clear()
            if not self._watches:
                break
            try:
                # New registrations wake the poller early so their first describe is prompt.
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval())
            except asyncio.TimeoutError:
                pass

    async def _list_changed(self, client: Any, since: datetime) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"LastModifiedTimeAfter": since, "MaxResults": LIST_PAGE_SIZE}
        while True:
            self.stats.list_calls += 1
            page = await client.list_auto_ml_jobs(**kwargs)
            summaries.extend(page.get("AutoMLJobSummaries", []))
            token = page.get("NextToken")
            if not token:
                return summaries
            kwargs["NextToken"] = token

    def _take_hints(self, summaries: list[dict[str, Any]]) -> None:
        for summary in summaries:
            watches = self._watches.get(summary.get("AutoMLJobName", ""))
            if not watches:
                continue
            hint = AutopilotJob.from_describe(summary)
            for watch in watches:
                watch.put(_Listed(hint))
                if watch.criteria.verdict(hint) != "waiting":
                    self._due.add(watch.job_name)

    def _full_checks(self) -> None:
        """Mark the jobs longest without a describe as due, within the per-cycle budget."""
        budget = math.ceil(len(self._described_at) / self.round_robin_divisor)
        stale_before = time.monotonic() - self.full_check_seconds
        stale = [
            name for name, at in self._described_at.items() if at <= stale_before and name not in self._due
        ]
        stale.sort(key=self._described_at.__getitem__)
        self._due.update(stale[:budget])

    async def _describe(self, client: Any, name: str, limit: asyncio.Semaphore) -> None:
        async with limit:
            self.stats.describe_calls += 1
            if name in self._described_at:
                self._described_at[name] = time.monotonic()
            result: AutopilotJob | BaseException
            try:
                result = await describe_job(client, name)
                if result.api_version == "v2":  # the V1 describe was refused first
                    self.stats.describe_calls += 1
            except Exception as err:
                result = err
                self._due.add(name)  # try again next cycle
        for watch in self._watches.get(name, []):
            watch.put(result)

    async def cycle(self, client: Any) -> None:
        """One poll cycle: list what changed, describe what matters (public for tests)."""
        self.stats.cycles += 1
        if self.list_disabled:
            # ListAutoMLJobs is not allowed (or broken): describe every job, as uncoalesced triggers do.
            self._due.update(self._watches)
        elif self._list_since is None:
            # New jobs get their first describe anyway; start the watermark on the local clock.
            self._list_since = datetime.now(timezone.utc) - timedelta(seconds=INITIAL_LOOKBACK_SECONDS)
        else:
            try:
                summaries = await self._list_changed(client, self._list_since - self.overlap)
            except Exception as err:
                self.stats.list_failures += 1
                if not is_transient(err):
                    # For example AccessDenied: a role allowed to describe but not to list jobs.
                    # Waiting must not depend on it: fall back to one describe per job per cycle.
                    log.warning(
                        "ListAutoMLJobs failed (%s: %s); polling each job with DescribeAutoMLJob instead",
                        type(err).__name__,
                        err,
                    )
                    self.list_disabled = True
                    self._due.update(self._watches)
                # A transient error keeps the old window; the next cycle lists again from there.
            else:
                seen = [
                    s["LastModifiedTime"]
                    for s in summaries
                    if isinstance(s.get("LastModifiedTime"), datetime)
                ]
                if seen:
                    self._list_since = max(self._list_since, max(seen))
                self._take_hints(summaries)
        self._full_checks()
        due, self._due = self._due, set()
        limit = asyncio.Semaphore(MAX_CONCURRENT_DESCRIBES)
        await asyncio.gather(*(self._describe(client, name, limit) for name in due if name in self._watches))


#: One poller per event loop and client key.
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, CoalescedPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(key: Any) -> CoalescedPoller:
    """
    The poller of this event loop for ``key``, created on first use.

    :param key: the client key (connection, region, verify, botocore config).
    """
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get(key)
    if poller is None:
        poller = pollers[key] = CoalescedPoller()
    return poller
