"""Adaptive polling: a source's interval follows its observed publishing rate.

The rule, after each run of a source with ``adaptive = { floor, ceiling }``:

1. The run's rate is ``new articles / seconds since the previous run`` (the first run
   of a source is skipped: it finds the whole backlog, not the rhythm).
2. The source's rate is an exponentially weighted mean of the run rates
   (``ALPHA`` = 0.3: the last few runs weigh most).
3. The target interval is the expected time for **half an article**
   (``0.5 / rate``): a busy feed is polled about twice per new article, so an
   article waits on average a quarter of its gap; a source with no new article yet
   targets the ceiling.
4. The interval moves towards the target by at most a factor of 2 per run (no
   jumps on one lucky run), and always stays within ``[floor, ceiling]``.

The interval is stored in ``sources.poll_interval`` and resumed after a restart (the
smoothed rate is learned again). So a feed publishing every 10 minutes settles at a 5-minute interval; one that
goes quiet backs off 1.5-2x per run up to the ceiling, and comes back down within
a few runs once it publishes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ALPHA = 0.3
MAX_STEP = 2.0


@dataclass
class AdaptiveState:
    """What the daemon remembers of one adaptive source (in memory, per process)."""

    interval: float
    rate: float | None = None  # articles per second, smoothed
    last_started: datetime | None = None  # when the previous run began

    def observe(self, new_articles: int, elapsed: float, floor: float, ceiling: float) -> float:
        """Record one run (``new_articles`` since ``elapsed`` seconds ago); the next interval."""
        if elapsed > 0:
            observed = max(0, new_articles) / elapsed
            self.rate = observed if self.rate is None else ALPHA * observed + (1 - ALPHA) * self.rate
        self.interval = next_interval(self.interval, self.rate, floor, ceiling)
        return self.interval


def next_interval(current: float, rate: float | None, floor: float, ceiling: float) -> float:
    """The next polling interval (seconds) for a source publishing ``rate`` articles per second."""
    target = 0.5 / rate if rate else ceiling
    lower, upper = current / MAX_STEP, current * MAX_STEP
    interval = min(max(target, lower), upper)
    return min(max(interval, floor), ceiling)
