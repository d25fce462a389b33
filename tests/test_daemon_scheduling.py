"""The scheduler's decisions, driven by an injected clock: first run after downtime
(coalesced), adaptive polling, and the one-scheduler-per-database lease."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from crawler.daemon.adaptive import AdaptiveState, next_interval
from crawler.daemon.lock import SchedulerLock, SchedulerLocked, current_owner, request_reload
from crawler.daemon.schedules import SourceSchedule
from crawler.daemon.service import first_run_time
from crawler.store import Store

UTC = timezone.utc


def source(**kw) -> SourceSchedule:
    return SourceSchedule(name="s", url="http://127.0.0.1/feed", file="x.toml", line=1, **kw)


# -- first run after (re)start ----------------------------------------------------------

def test_first_run_of_a_new_interval_source_is_now():
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert first_run_time(source(every=900), None, now) == now


def test_interval_source_resumes_its_rhythm_or_catches_up_once():
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    recent = datetime(2026, 1, 5, 11, 55)  # naive UTC, as stored
    assert first_run_time(source(every=900), recent, now) == datetime(2026, 1, 5, 12, 10, tzinfo=UTC)
    # Down for a day: 96 runs missed, made up by ONE run now.
    assert first_run_time(source(every=900), datetime(2026, 1, 4, 12, 0), now) == now


def test_cron_source_missed_during_downtime_runs_now_else_at_next_time():
    cron = source(cron="0 8 * * mon-fri", timezone="Europe/Paris")
    monday_noon = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)  # 12:00 in Paris
    # Last run on Friday: Monday 08:00 Paris was missed -> run now, once.
    assert first_run_time(cron, datetime(2026, 1, 2, 7, 0), monday_noon) == monday_noon
    # Ran this morning at 08:00 Paris (07:00 UTC): next is Tuesday 08:00 Paris.
    assert first_run_time(cron, datetime(2026, 1, 5, 7, 0), monday_noon) == \
        datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    # Never ran: wait for the next time (a cron source does not run at start-up).
    assert first_run_time(cron, None, monday_noon) == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)


# -- adaptive polling --------------------------------------------------------------------

def simulate(gap: float, start: float, floor: float, ceiling: float, runs: int) -> list[float]:
    """A source publishing one article every ``gap`` seconds, polled adaptively."""
    state = AdaptiveState(interval=start)
    clock, published_until, intervals = 0.0, 0.0, []
    for _ in range(runs):
        elapsed = state.interval
        clock += elapsed
        new = int(clock // gap) - int(published_until // gap) if gap else 0
        published_until = clock
        intervals.append(state.observe(new, elapsed, floor, ceiling))
    return intervals


def test_busy_source_settles_near_half_its_publishing_gap():
    intervals = simulate(gap=600, start=3600, floor=60, ceiling=6 * 3600, runs=60)
    assert 200 <= sorted(intervals[-20:])[10] <= 450  # median of the last 20 runs ~ 300 s


def test_silent_source_backs_off_to_the_ceiling_and_never_below_the_floor():
    intervals = simulate(gap=0, start=300, floor=60, ceiling=3600, runs=20)
    assert intervals[-1] == 3600
    assert all(b <= a * 2 + 1e-9 for a, b in zip([300] + intervals, intervals))  # at most 2x per run
    fast = simulate(gap=1, start=300, floor=60, ceiling=3600, runs=20)
    assert min(fast) == 60 and fast[-1] == 60


def test_next_interval_moves_at_most_twofold():
    assert next_interval(100, rate=1.0, floor=1, ceiling=10_000) == 50  # target 0.5 s, halved only
    assert next_interval(100, rate=None, floor=1, ceiling=10_000) == 200
    assert next_interval(100, rate=0.5 / 150, floor=1, ceiling=10_000) == pytest.approx(150)


# -- the lease -------------------------------------------------------------------------------

class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def store(db_url):
    store = Store.from_url(db_url)
    yield store
    store.dispose()


def test_only_one_scheduler_holds_the_lease(store):
    clock = Clock(datetime(2026, 1, 5, 12, 0))
    first = SchedulerLock(store, owner="hostA:1:aa", lease=30, clock=clock)
    first.acquire()
    second = SchedulerLock(store, owner="hostB:2:bb", lease=30, clock=clock)
    clock.now += timedelta(seconds=20)
    with pytest.raises(SchedulerLocked, match=r"another scheduler is running on this database: hostA:1:aa"):
        second.acquire()
    assert first.heartbeat()
    clock.now += timedelta(seconds=25)  # 25 s after the heartbeat: still fresh
    with pytest.raises(SchedulerLocked):
        second.acquire()
    clock.now += timedelta(seconds=10)  # 35 s without heartbeat: stale, taken over
    second.acquire()
    assert current_owner(store).owner == "hostB:2:bb"
    assert first.heartbeat() is False  # the first learns it lost the lease
    first.release()  # releasing a lease one no longer holds changes nothing
    assert current_owner(store).owner == "hostB:2:bb"
    second.release()
    assert current_owner(store) is None


def test_lease_of_a_dead_local_process_is_taken_at_once(store):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited
    clock = Clock(datetime(2026, 1, 5, 12, 0))
    SchedulerLock(store, owner=f"{socket.gethostname()}:{pid}:dead", clock=clock).acquire()
    mine = SchedulerLock(store, clock=clock)
    mine.acquire()  # no waiting for the lease to expire
    assert current_owner(store).pid == os.getpid()


def test_reload_request_is_taken_once(store):
    lock = SchedulerLock(store)
    lock.acquire()
    assert lock.take_reload_request() is False
    request_reload(store)
    request_reload(store)  # twice before the heartbeat: one reload
    assert lock.take_reload_request() is True
    assert lock.take_reload_request() is False
    assert current_owner(store).owner == lock.owner  # the lease row is untouched
