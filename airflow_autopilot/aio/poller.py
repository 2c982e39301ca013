"""The coalesced poller: one ListAutoMLJobs-driven poller per event loop and connection serves
every waiting trigger and every event watcher (docs/sensor.md, Coalesced polling; docs/events.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from airflow_autopilot.aio.clients import describe_job
from airflow_autopilot.core.clock import Clock, default_clock, parse_timestamp
from airflow_autopilot.core.errors import THROTTLING_ERROR_CODES, error_code, is_transient
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria, server_time
from airflow_autopilot.core.redaction import redact, redacting_logger
from airflow_autopilot.core.waits.pace import min_poll_interval

log = redacting_logger(__name__)

#: Summaries per ListAutoMLJobs page (the API's maximum).
LIST_PAGE_SIZE = 100
#: How far each list window reaches back before the server time (HTTP ``Date``) of the previous
#: listing: the Date header's whole seconds, the server's own processing time, and changes that
#: become visible to ListAutoMLJobs a little after their LastModifiedTime.
DEFAULT_OVERLAP_SECONDS = 5.0
#: A hand-off's describe showed the job's state as of its Date header, give or take that header's
#: whole seconds (a describe is read back at once; list visibility is what the overlap is for).
HAND_OFF_MARGIN = timedelta(seconds=1)
#: A full listing (every watched job's status) at least this often, in server time: the safety
#: net for any change the windows missed and for jobs that disappeared.
DEFAULT_FULL_LISTING_SECONDS = 540.0
#: Pages a full listing may take and still come as often as a watcher's ``not_found_grace`` asks
#: (it then replaces that cycle's window, which costs one page too).
PRESENCE_LISTING_PAGES = 1
#: With ListAutoMLJobs denied, at most this many DescribeAutoMLJob calls per second.
DEFAULT_FALLBACK_DESCRIBES_PER_SECOND = 5.0
#: A new poller's first cycle waits this long (at most one poll interval), so that the triggers a
#: triggerer starts together share its first listing.
FIRST_CYCLE_DELAY_SECONDS = 1.0
#: Concurrent DescribeAutoMLJob calls of one poller.
MAX_CONCURRENT_DESCRIBES = 16
#: Waiters a listing's news wakes per turn of the event loop: each runs a step of its own when woken
#: (progress, a log line), and hundreds in one turn would hold the loop past Airflow's 0.2 s warning.
WAKE_BATCH = 16
#: Pause between two batches, at most :data:`WAKE_SPREAD_SECONDS` in all: an Airflow 3 triggerer
#: writes each log line to its supervisor's socket, and a burst of hundreds fills the socket while
#: the supervisor is busy (its database work), blocking the loop in the write until it reads.
WAKE_PAUSE_SECONDS = 0.05
WAKE_SPREAD_SECONDS = 1.0
#: Cycles remembered in :attr:`PollerStats.history` (for the bench and tests).
HISTORY_LENGTH = 4096
#: The IAM permission coalesced polling needs on top of sagemaker:DescribeAutoMLJob.
LIST_PERMISSION = "sagemaker:ListAutoMLJobs"

Hint = Callable[[AutopilotJob], object]
ApiVersion = Literal["auto", "v1", "v2"]
#: (status, secondary status, LastModifiedTime): what the poller compares to see a change.
_State = tuple[str, "str | None", "datetime | None"]


def _state_of(row: Mapping[str, Any]) -> _State:
    return (
        str(row.get("AutoMLJobStatus", "")),
        row.get("AutoMLJobSecondaryStatus"),
        parse_timestamp(row.get("LastModifiedTime")),
    )


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
    :param describe_rate: the trigger's ceiling on DescribeAutoMLJob calls per second while
        ListAutoMLJobs is denied; the poller keeps to the smallest one.
    :param not_found_grace: the trigger's ``not_found_grace_seconds``: while a full listing takes
        one page, the poller checks that every watched job still exists at least this often (the
        smallest one); ``None`` asks for no such check.
    """

    job_name: str
    criteria: WaitCriteria
    poll_interval: float
    on_hint: Hint | None = None
    describe_rate: float = DEFAULT_FALLBACK_DESCRIBES_PER_SECOND
    not_found_grace: float | None = None
    _items: deque[AutopilotJob | BaseException | _Listed] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, item: AutopilotJob | BaseException | _Listed, *, wake: bool = True) -> None:
        """Queue a describe result (or its error), or a list summary (from the poller); with
        ``wake=False`` the waiter sees it when next woken (the poller wakes in batches)."""
        self._items.append(item)
        if wake:
            self._ready.set()

    def wake(self) -> None:
        """Let the waiter read what is queued."""
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


@dataclass(eq=False)
class Subscription:
    """
    A watcher's subscription to every ListAutoMLJobs window of a :class:`CoalescedPoller`: each
    window listing's summaries (every job modified since the window's start), from ``since`` on,
    with no gap between windows. Full listings (which stop at the watched jobs) are not passed on:
    the next window reaches back over them.

    :param since: the server time from which the subscriber must see every change.
    :param poll_interval: the subscriber's poll interval; the poller cycles at the smallest one.
    """

    since: datetime
    poll_interval: float
    #: Start of the changes not shown yet (a window must start at or before it to cover them).
    needs_from: datetime | None = None
    _items: deque[list[Mapping[str, Any]] | BaseException] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.needs_from = self.since

    def put(self, item: list[Mapping[str, Any]] | BaseException) -> None:
        """Queue a window's summaries (or the error that stops the poller from listing)."""
        self._items.append(item)
        self._ready.set()

    async def next(self) -> list[Mapping[str, Any]]:
        """The summaries of the next window listing that covered this subscription (raises the
        poller's error instead, if any)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, BaseException):
            raise item
        return item


@dataclass(frozen=True)
class CycleRecord:
    """What one poll cycle did, for the bench and tests."""

    #: The poller's ``clock.monotonic()`` when the cycle started.
    started: float
    #: Wall seconds the cycle took (its calls included).
    seconds: float
    #: ``"window"`` (changes since the last listing), ``"full"`` (every watched job), ``"fallback"``
    #: (describes only: ListAutoMLJobs denied) or ``"failed"`` (the listing failed).
    kind: str
    #: ListAutoMLJobs pages requested.
    list_calls: int
    #: DescribeAutoMLJob(V2) calls made.
    describe_calls: int
    #: Jobs watched during the cycle.
    watched: int
    #: The server time (Date header) of the cycle's first listing page, if any.
    server_date: datetime | None


@dataclass
class PollerStats:
    """Calls made by a poller, for tests and the bench."""

    cycles: int = 0
    list_calls: int = 0
    describe_calls: int = 0
    list_failures: int = 0
    full_listings: int = 0
    #: The most recent cycles, oldest first.
    history: deque[CycleRecord] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))


def _server_may_have_lost_state(err: BaseException) -> bool:
    """Whether a transient listing error may hide a server restart (a refused, dropped or
    timed-out connection, a 5xx): throttling means the server is there, with its state."""
    return error_code(err) not in THROTTLING_ERROR_CODES


def _may_end_a_wait(job: AutopilotJob, watches: Iterable[Watch]) -> bool:
    """Whether a state the poller learnt may end one of these waits: then only a describe, due next
    cycle, gives the verdict (list summaries lack what a verdict needs)."""
    return any(watch.criteria.verdict(job) != "waiting" for watch in watches)


@dataclass(eq=False)
class _Tracked:
    """The poller's knowledge of one watched job."""

    watches: list[Watch] = field(default_factory=list)
    #: The last state the poller knows (from the task's hand-off, a list summary or a describe).
    state: _State | None = None
    #: The job as last seen (for a watcher that joins later).
    job: AutopilotJob | None = None
    created: datetime | None = None
    api_version: ApiVersion = "auto"
    #: The poller's ``clock.monotonic()`` at the last describe (or the hand-off's): fallback order.
    described_at: float = -math.inf
    #: A describe is due next cycle.
    due: bool = False


class CoalescedPoller:
    """
    Polls many Autopilot jobs with few calls; see the module docstring and docs/sensor.md.

    Every time window comes from the server's clock (the HTTP ``Date`` header of its answers),
    never from this machine's: a triggerer whose clock is off misses nothing.

    The poller opens no client of its own: it uses the (shared) client its watchers hold, so it
    lives exactly as long as someone waits.

    :param overlap_seconds: how far each list window reaches back before the previous listing's
        server time.
    :param full_listing_seconds: at most this long (server time) between two full listings, the
        bound on how late a change the windows missed is noticed (plus one poll interval).
    :param clock: the clock pacing the cycles and dating a listing without a Date header
        (default: :func:`~airflow_autopilot.core.clock.default_clock`).
    :param run_loop: cycle in a task of its own while anyone watches; ``False`` leaves calling
        :meth:`cycle` to the caller (tests).
    """

    def __init__(
        self,
        *,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        full_listing_seconds: float = DEFAULT_FULL_LISTING_SECONDS,
        clock: Clock | None = None,
        run_loop: bool = True,
    ) -> None:
        self.overlap = timedelta(seconds=max(0.0, overlap_seconds))
        self.full_listing = timedelta(seconds=max(0.0, full_listing_seconds))
        self.stats = PollerStats()
        #: Set when ListAutoMLJobs fails for good; the poller then describes jobs at a bounded rate.
        self.list_disabled = False
        self._clock = clock or default_clock()
        self._run_loop = run_loop
        self._jobs: dict[str, _Tracked] = {}
        # Watchers that see every window listing (event-driven scheduling, docs/events.md).
        self._subscriptions: list[Subscription] = []
        #: Watches a listing queued news for, not woken yet (:meth:`_wake_listed`).
        self._unwoken: list[Watch] = []
        # Start of the next list window (server time), once a listing succeeded.
        self._since: datetime | None = None
        # Where the latest listing's window started (every change since then was in it).
        self._covered_from: datetime | None = None
        # Where the next window must start for the hand-offs registered since the last listing, when
        # before _since (their describe's time, less HAND_OFF_MARGIN).
        self._reach_back: datetime | None = None
        # A job of unknown state registered (or a hand-off is too old): list every job next cycle.
        self._needs_full = False
        # Server time of the last full listing (the first listing counts as one: see _after_listing).
        self._last_full: datetime | None = None
        # Pages the last full listing took: while it is one (or not known yet), full listings come
        # as often as the watchers' not_found_grace asks (they cost what the window they replace costs).
        self._last_full_pages: int | None = None
        # The newest server time seen and the monotonic time it arrived at.
        self._server: tuple[datetime, float] | None = None
        # Rows of the most recent listing: a job found here needs no listing of its own.
        self._recent: dict[str, Mapping[str, Any]] = {}
        self._disabled_at: datetime | float | None = None
        self._next_describe_at = -math.inf  # the fallback's next describe slot (monotonic)
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._wake = asyncio.Event()

    # --- registration -----------------------------------------------------------------------------
    @property
    def watched(self) -> int:
        return len(self._jobs)

    @asynccontextmanager
    async def watch(
        self,
        job_name: str,
        criteria: WaitCriteria,
        poll_interval: float,
        on_hint: Hint | None = None,
        *,
        client: Any,
        seen: AutopilotJob | None = None,
        describe_rate: float = DEFAULT_FALLBACK_DESCRIBES_PER_SECOND,
        not_found_grace: float | None = None,
    ) -> AsyncIterator[Watch]:
        """
        Register a job for the life of the ``async with`` block. No call is made for it: a job
        handed over with ``seen`` is known as of that describe, and the next list window reaches
        back to it; a job found in the latest listing is known from there; any other job is
        included in the next cycle's full listing. A describe follows only when a listing shows a
        state that may end the wait, or shows that the job is gone.

        :param job_name: the AutoMLJobName.
        :param criteria: the trigger's wait criteria.
        :param poll_interval: the trigger's poll interval in seconds.
        :param on_hint: progress callback for summary-based updates, called in the watcher's task.
        :param client: the aiobotocore SageMaker client the caller holds open for the whole block
            (every watcher of one poller holds the same shared client).
        :param seen: the describe the caller (or its task, before deferring) made last, with its
            server time (:attr:`AutopilotJob.observed_at`) when known.
        :param describe_rate: ceiling on describes per second while ListAutoMLJobs is denied.
        :param not_found_grace: how soon after it disappears the wait must learn that the job is
            gone (see :class:`Watch`); ``None``: at the full listings only.
        """
        self._client = client
        watch = Watch(
            job_name,
            criteria,
            poll_interval,
            on_hint,
            describe_rate=describe_rate,
            not_found_grace=not_found_grace,
        )
        tracked = self._jobs.get(job_name)
        if tracked is None:
            tracked = self._jobs[job_name] = _Tracked([watch])
            self._learn(job_name, tracked, seen)
        else:
            # Another wait on a job already watched: it starts from what the poller knows.
            tracked.watches.append(watch)
            if tracked.job is not None and seen is None:
                watch.put(_Listed(tracked.job))
                tracked.due |= _may_end_a_wait(tracked.job, [watch])
        self._start_loop()
        try:
            yield watch
        finally:
            if watch in tracked.watches:
                tracked.watches.remove(watch)
            if not tracked.watches and self._jobs.get(job_name) is tracked:
                del self._jobs[job_name]
            self._left()

    @asynccontextmanager
    async def subscribe(
        self, since: datetime, poll_interval: float, *, client: Any
    ) -> AsyncIterator[Subscription]:
        """
        Subscribe to every window listing for the life of the ``async with`` block (an event-driven
        watcher: docs/events.md). It costs no call of its own: the next window reaches back to
        ``since`` (one listing, maybe several pages), and every later cycle's window is shared with
        the deferred waits and the other subscribers.

        :param since: the server time from which every change must be shown.
        :param poll_interval: the subscriber's poll interval in seconds.
        :param client: the aiobotocore SageMaker client the caller holds open for the whole block.
        """
        self._client = client
        subscription = Subscription(since, poll_interval)
        self._subscriptions.append(subscription)
        self._start_loop()
        self._wake.set()  # a new subscriber's interval may be the shortest
        try:
            yield subscription
        finally:
            self._subscriptions.remove(subscription)
            self._left()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def _active(self) -> bool:
        return bool(self._jobs or self._subscriptions)

    def _start_loop(self) -> None:
        if self._run_loop and (self._task is None or self._task.done()):
            # An empty context: the poller is nobody's task, so its own log lines (list failures)
            # go to the triggerer's log, not to the log of whichever trigger happened to start it.
            self._task = contextvars.Context().run(
                asyncio.create_task, self._run(), name="autopilot-coalesced-poller"
            )

    def _left(self) -> None:
        if not self._active():
            self._client = None
            self._wake.set()  # let the loop end now rather than after its sleep

    def _learn(self, name: str, tracked: _Tracked, seen: AutopilotJob | None) -> None:
        """What a new registration tells the poller, and what its next listing must cover."""
        if seen is not None:
            tracked.job = seen
            tracked.state = _state_of(seen.raw)
            tracked.created = parse_timestamp(seen.creation_time)
            tracked.api_version = seen.api_version
            tracked.described_at = self._clock.monotonic()
            # The hand-off may already end the wait (a restart after the job ended): only a
            # describe gives the verdict, and no later listing would show a change.
            tracked.due |= _may_end_a_wait(seen, tracked.watches)
            # The state held at the describe's server time (less the Date header's resolution);
            # without one, at least since the job's own LastModifiedTime (server clock too).
            at = tracked.state[2]
            if seen.observed_at is not None:
                at = seen.observed_at - HAND_OFF_MARGIN
            now = self.server_now()
            if at is None or (now is not None and now - at > self.full_listing):
                self._needs_full = True  # a window reaching back that far could cost more
            elif self._covered_from is not None and at >= self._covered_from:
                # The latest listing showed every change since then (triggers that start together
                # share it): take its row when it is newer; the next window goes on from there.
                row = self._recent.get(name)
                if row is not None and (_state_of(row)[2] or at) > (tracked.state[2] or at):
                    self._take(row)
            elif self._since is None or at < self._since:
                self._reach_back = at if self._reach_back is None else min(self._reach_back, at)
            return
        row = self._recent.get(name)
        if row is not None:  # in the latest listing: the next window covers it from there
            self._take(row)  # its waiter gets the row (and a describe when it may end the wait)
            return
        self._needs_full = True
        tracked.due = self.list_disabled  # without the list, only a describe tells

    # --- server clock -----------------------------------------------------------------------------
    def _saw_server_time(self, date: datetime | None) -> None:
        if date is not None and (self._server is None or date >= self._server[0]):
            self._server = (date, self._clock.monotonic())

    def server_now(self) -> datetime | None:
        """The server's time now, from the newest Date header and the time elapsed since."""
        if self._server is None:
            return None
        date, at = self._server
        return date + timedelta(seconds=self._clock.monotonic() - at)

    def _full_listing_due(self) -> bool:
        if not self._jobs and self._subscriptions:
            return False  # only subscribers: windows are all they need
        if self._needs_full or (self._since is None and self._reach_back is None):
            return True
        if self._last_full is None:
            return False  # the first listing starts the period
        now = self.server_now()
        return now is not None and now - self._last_full >= self._full_listing_period()

    def _full_listing_period(self) -> timedelta:
        """How often a full listing comes: every ``full_listing_seconds``, or as often as the
        smallest ``not_found_grace`` of a watcher asks while a full listing takes one page (then it
        replaces the cycle's window at no extra cost, and a job that disappeared is noticed within
        that grace)."""
        graces = [
            w.not_found_grace
            for t in self._jobs.values()
            for w in t.watches
            if w.not_found_grace is not None and w.not_found_grace > 0
        ]
        pages = self._last_full_pages
        # Never measured (the first listing was a window): the first such listing measures it.
        if not graces or (pages is not None and pages > PRESENCE_LISTING_PAGES):
            return self.full_listing
        # Half the grace: a job gone just after one listing is described, and its wait ends,
        # before the grace is over even when a cycle runs late.
        return min(self.full_listing, timedelta(seconds=max(min(graces) / 2, self._interval())))

    # --- the loop ---------------------------------------------------------------------------------
    def _interval(self) -> float:
        requested = min(
            [w.poll_interval for t in self._jobs.values() for w in t.watches]
            + [s.poll_interval for s in self._subscriptions],
            default=60.0,
        )
        return max(min_poll_interval(), requested)

    def _describe_rate(self) -> float:
        rates = [w.describe_rate for t in self._jobs.values() for w in t.watches if w.describe_rate > 0]
        return min(rates, default=DEFAULT_FALLBACK_DESCRIBES_PER_SECOND)

    def _fail_all(self, err: BaseException) -> None:
        for tracked in self._jobs.values():
            for watch in tracked.watches:
                watch.put(err)
        for subscription in self._subscriptions:
            subscription.put(err)

    async def _run(self) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(
                self._wake.wait(), timeout=min(self._interval(), FIRST_CYCLE_DELAY_SECONDS)
            )
        except asyncio.TimeoutError:
            pass
        while self._active():
            started = self._clock.monotonic()
            # Bounded: a call left hanging (its client closed under it when the last watcher left, a
            # server that never answers) must not stall every later watcher.
            limit = max(4 * self._interval(), 10.0)
            try:
                await asyncio.wait_for(self.cycle(self._client), timeout=limit)
            except asyncio.TimeoutError:
                log.warning("A coalesced poll cycle took over %.0f s; starting the next one", limit)
            except Exception as err:  # a bug, not an AWS error (those are handled in cycle)
                log.exception("The coalesced poller's cycle failed")
                self._fail_all(err)
            self._wake.clear()
            if not self._active():
                break
            # One cycle per poll interval, start to start (a cycle's own calls count).
            delay = max(0.0, self._interval() - (self._clock.monotonic() - started))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def cycle(self, client: Any) -> None:
        """One poll cycle: list what changed (or everything), describe what matters (public for tests)."""
        self.stats.cycles += 1
        started, lists, describes = self._clock.monotonic(), self.stats.list_calls, self.stats.describe_calls
        kind, date = await self._list_and_learn(client)
        if kind == "fallback":
            await self._fallback_describes(client)
        else:
            await self._describe_due(client)
        self.stats.history.append(
            CycleRecord(
                started=started,
                seconds=self._clock.monotonic() - started,
                kind=kind,
                list_calls=self.stats.list_calls - lists,
                describe_calls=self.stats.describe_calls - describes,
                watched=len(self._jobs),
                server_date=date,
            )
        )

    async def _list_and_learn(self, client: Any) -> tuple[str, datetime | None]:
        """List (a window, or everything); return the kind of cycle and the listing's server time."""
        if self.list_disabled:
            if not self._list_retry_due():
                return "fallback", None
            full = True  # is the permission back? A full listing rebuilds what the poller knows.
        else:
            full = self._full_listing_due()
        since = None if full else self._window_start()
        # Registrations during the listing's awaits count for the next one.
        needs_full, reach_back, self._needs_full, self._reach_back = (
            self._needs_full,
            self._reach_back,
            False,
            None,
        )
        targets = set(self._jobs)
        try:
            if full:
                rows, date = await self._list_everything(client, targets)
            else:
                assert since is not None
                rows, date, full = await self._list_window(client, since, targets)
        except Exception as err:
            self.stats.list_failures += 1
            self._needs_full = self._needs_full or needs_full
            if reach_back is not None:
                self._reach_back = (
                    reach_back if self._reach_back is None else min(self._reach_back, reach_back)
                )
            if is_transient(err):
                if _server_may_have_lost_state(err):
                    # A server that did not answer may come back empty (a restart): the next
                    # listing is a full one, which shows every watched job that is gone.
                    self._needs_full = True
                return "failed", None  # same window next cycle
            self._disable_list(err)
            for subscription in self._subscriptions:
                subscription.put(err)  # a watcher cannot see jobs finish without the listing
            return "fallback", None
        if self.list_disabled:
            self.list_disabled = False
            log.warning("ListAutoMLJobs works again: back to coalesced polling of %d jobs", len(self._jobs))
        self._after_listing(rows, date, since, full, targets)
        await self._wake_listed()
        return ("full" if full else "window"), date

    async def _wake_listed(self) -> None:
        """Wake the waiters a listing queued news for, :data:`WAKE_BATCH` per turn of the loop."""
        unwoken, self._unwoken = self._unwoken, []
        pause = min(WAKE_PAUSE_SECONDS, WAKE_SPREAD_SECONDS / max(1, math.ceil(len(unwoken) / WAKE_BATCH)))
        try:
            while unwoken:
                batch, unwoken = unwoken[:WAKE_BATCH], unwoken[WAKE_BATCH:]
                for watch in batch:
                    watch.wake()
                if unwoken:
                    # This batch's waiters (and the loop's timers) run first; the pause is the loop's
                    # real time, not the wait's clock: it paces the log lines, not the wait.
                    await asyncio.sleep(pause)
        finally:
            for watch in unwoken:  # a cycle cancelled midway leaves nobody unwoken
                watch.wake()

    def _window_start(self) -> datetime:
        starts = [] if self._since is None else [self._since]
        if self._reach_back is not None:
            starts.append(self._reach_back)
        starts.extend(s.needs_from for s in self._subscriptions if s.needs_from is not None)
        return min(starts)

    async def _list_window(
        self, client: Any, since: datetime, targets: set[str]
    ) -> tuple[list[Mapping[str, Any]], datetime | None, bool]:
        """
        Every job modified after ``since`` (server time), the first page's server time, and whether
        it turned into a full listing: a window that reaches back further than the full listings'
        period (hand-offs older than it, known only once the server's time is) and needs more than
        one page costs more than listing every watched job.
        """
        kwargs: dict[str, Any] = {"LastModifiedTimeAfter": since, "MaxResults": LIST_PAGE_SIZE}
        too_wide = False

        def enough(page: Mapping[str, Any]) -> bool:
            nonlocal too_wide
            date = server_time(page)
            # A subscriber needs the whole window: never cut it short.
            too_wide = (
                not self._subscriptions
                and date is not None
                and date - since > self.full_listing + self.overlap
            )
            return too_wide

        rows, date = await self._pages(client, kwargs, enough)
        if too_wide:
            rows, date = await self._list_everything(client, targets)
        return rows, date, too_wide

    async def _list_everything(
        self, client: Any, targets: set[str]
    ) -> tuple[list[Mapping[str, Any]], datetime | None]:
        """
        Newest jobs first until every job in ``targets`` was listed, or the listing is past the
        oldest of their creation times (when all are known), or it ends.
        """
        created = [self._jobs[n].created for n in targets if n in self._jobs]
        oldest = min(created) if created and all(c is not None for c in created) else None  # type: ignore[type-var]
        unseen = set(targets)

        def enough(page: Mapping[str, Any]) -> bool:
            rows = page.get("AutoMLJobSummaries", [])
            unseen.difference_update(r.get("AutoMLJobName") for r in rows)
            if not unseen:
                return True
            last = parse_timestamp(rows[-1].get("CreationTime")) if rows else None
            return oldest is not None and last is not None and last < oldest

        kwargs: dict[str, Any] = {
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": LIST_PAGE_SIZE,
        }
        self.stats.full_listings += 1
        calls = self.stats.list_calls
        result = await self._pages(client, kwargs, enough)
        # Jobs that are gone make a listing longer than it is when all are there: not the measure.
        if not unseen:
            self._last_full_pages = self.stats.list_calls - calls
        return result

    async def _pages(
        self, client: Any, kwargs: dict[str, Any], enough: Callable[[Mapping[str, Any]], bool]
    ) -> tuple[list[Mapping[str, Any]], datetime | None]:
        rows: list[Mapping[str, Any]] = []
        first_date: datetime | None = None
        while True:
            self.stats.list_calls += 1
            page = await client.list_auto_ml_jobs(**kwargs)
            date = server_time(page)
            self._saw_server_time(date)
            if first_date is None:
                first_date = date
            rows.extend(page.get("AutoMLJobSummaries", []))
            token = page.get("NextToken")
            if not token or enough(page):
                return rows, first_date
            kwargs["NextToken"] = token

    def _after_listing(
        self,
        rows: list[Mapping[str, Any]],
        date: datetime | None,
        since: datetime | None,
        full: bool,
        targets: set[str],
    ) -> None:
        if date is None:
            # A server without a Date header: the local clock is all there is (a generous overlap).
            date = self._clock.now() - timedelta(seconds=60)
        # A window shows every change since its start; a full listing may stop before a job that
        # registers later, so it vouches for nothing beyond its own targets.
        self._covered_from = None if full else since
        self._since = date - self.overlap
        if full or self._last_full is None:
            # The first listing, a window from the hand-offs, anchors the safety net's period too.
            self._last_full = date
        self._recent = {str(r.get("AutoMLJobName")): r for r in rows}
        if not full and since is not None:
            for subscription in self._subscriptions:
                if subscription.needs_from is not None and since <= subscription.needs_from:
                    # The window showed every change since its start: the subscriber's from there on.
                    subscription.put(list(rows))
                    subscription.needs_from = self._since
        for row in rows:
            self._take(row)
        for name in targets - self._recent.keys():
            tracked = self._jobs.get(name)
            if tracked is not None and (full or self._window_should_show(tracked, since, date)):
                # A listing that should have shown it did not: gone, or not visible yet. Only a
                # describe can tell (ResourceNotFound ends the wait once it was seen).
                tracked.due = True

    def _window_should_show(self, tracked: _Tracked, since: datetime | None, date: datetime) -> bool:
        """Whether a window from ``since``, listed at server time ``date``, must show this job: its
        last known change came after the window's start and at least ``overlap_seconds`` before
        the listing (so it was visible to ListAutoMLJobs by then)."""
        modified = tracked.state[2] if tracked.state is not None else None
        if since is None or modified is None:
            return False
        return since < modified <= date - self.overlap

    def _take(self, row: Mapping[str, Any]) -> None:
        """Hand a listed job's summary to its watchers when it changed; mark a describe due when it
        may end one of their waits."""
        tracked = self._jobs.get(str(row.get("AutoMLJobName")))
        if tracked is None:
            return
        tracked.created = parse_timestamp(row.get("CreationTime")) or tracked.created
        state = _state_of(row)
        if state == tracked.state:
            return  # unchanged (listed again by the overlap, or by a full listing)
        tracked.state = state
        hint = tracked.job = AutopilotJob.from_list_summary(row)
        for watch in tracked.watches:
            watch.put(_Listed(hint), wake=False)
            self._unwoken.append(watch)
        tracked.due |= _may_end_a_wait(hint, tracked.watches)

    # --- describes --------------------------------------------------------------------------------
    async def _describe_due(self, client: Any) -> None:
        due = [name for name, tracked in self._jobs.items() if tracked.due]
        limit = asyncio.Semaphore(MAX_CONCURRENT_DESCRIBES)
        await asyncio.gather(*(self._describe(client, name, limit) for name in due))

    async def _describe(
        self,
        client: Any,
        name: str,
        limit: asyncio.Semaphore,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        tracked = self._jobs.get(name)
        if tracked is None:
            return
        tracked.due = False
        async with limit:
            if pace is not None:
                await pace()
            self.stats.describe_calls += 1
            result: AutopilotJob | BaseException
            try:
                result = await describe_job(client, name, tracked.api_version)
            except Exception as err:
                result = err
                tracked.due = True  # again next cycle
            else:
                if result.api_version == "v2" and tracked.api_version == "auto":
                    self.stats.describe_calls += 1  # the V1 describe was refused first
                tracked.api_version = result.api_version
                tracked.job = result
                tracked.state = _state_of(result.raw)
                tracked.created = parse_timestamp(result.creation_time) or tracked.created
                self._saw_server_time(result.observed_at)
            tracked.described_at = self._clock.monotonic()
        for watch in tracked.watches:
            watch.put(result)

    # --- without ListAutoMLJobs -------------------------------------------------------------------
    def _disable_list(self, err: BaseException) -> None:
        """Fall back to describes after a non-transient ListAutoMLJobs error; warn once per poller."""
        self._disabled_at = self.server_now() or self._clock.monotonic()
        if self.list_disabled:
            return  # a retry failed again: the warning was given
        self.list_disabled = True
        rate = self._describe_rate()
        log.warning(
            "ListAutoMLJobs failed (%s: %s). Coalesced polling needs the IAM permission %s; until it "
            "works, each of the %d watched Autopilot jobs is polled with DescribeAutoMLJob instead, "
            "at most %g calls per second (each job about every %.0f s); ListAutoMLJobs is retried "
            "every %.0f s.",
            error_code(err) or type(err).__name__,
            redact(str(err)),
            LIST_PERMISSION,
            len(self._jobs),
            rate,
            max(self._interval(), len(self._jobs) / rate),
            self.full_listing.total_seconds(),
        )
        for tracked in self._jobs.values():
            if tracked.state is None:
                tracked.due = True

    def _list_retry_due(self) -> bool:
        at = self._disabled_at
        if isinstance(at, datetime):
            now = self.server_now()
            return now is not None and now - at >= self.full_listing
        return at is not None and self._clock.monotonic() - at >= self.full_listing.total_seconds()

    async def _fallback_describes(self, client: Any) -> None:
        """
        Describe the jobs due first, then those described longest ago: at most ``rate x interval``
        a cycle, started ``1 / rate`` seconds apart, so the calls never exceed the rate ceiling.
        """
        rate = self._describe_rate()
        budget = max(1, math.floor(rate * self._interval()))
        order = sorted(self._jobs.items(), key=lambda item: (not item[1].due, item[1].described_at))
        batch = [name for name, _ in order[:budget]]
        limit = asyncio.Semaphore(MAX_CONCURRENT_DESCRIBES)
        turn = asyncio.Lock()

        async def pace() -> None:
            # Each start is 1 / rate after the previous one really started (slots carry over from
            # cycle to cycle): a stalled loop or a full semaphore delays the next call rather than
            # releasing the calls it held up in a burst.
            async with turn:
                delay = self._next_describe_at - self._clock.monotonic()
                if delay > 0:
                    await self._clock.sleep_async(delay)
                self._next_describe_at = self._clock.monotonic() + 1 / rate

        await asyncio.gather(*(self._describe(client, name, limit, pace) for name in batch))


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
