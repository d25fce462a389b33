"""One scheduler per database: a lease in the ``scheduler_lock`` table, kept by a heartbeat.

The row ``name='scheduler'`` holds the owner (``host:pid:token``) and the time of its
last heartbeat. A scheduler may take the lease when there is no row, when the
heartbeat is older than the lease time (the owner died or hangs), or when the owner
is a process of this host that no longer exists (a SIGKILLed daemon restarted at
once need not wait for its lease to expire). Every change is one conditional
statement, so two schedulers starting together cannot both win.

``newswatch reload`` on another host leaves a row ``name='reload'``: the daemon checks
for it on each heartbeat.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from crawler.exceptions import NewswatchError
from crawler.store.repository import to_db_time, utcnow
from crawler.store.schema import scheduler_lock

logger = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
RELOAD_NAME = "reload"


class SchedulerLocked(NewswatchError):
    """Another scheduler holds this database's lease."""


@dataclass
class LockOwner:
    owner: str
    heartbeat_at: datetime

    @property
    def host(self) -> str:
        return self.owner.rsplit(":", 2)[0]

    @property
    def pid(self) -> int | None:
        try:
            return int(self.owner.rsplit(":", 2)[1])
        except (IndexError, ValueError):
            return None

    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def process_alive(self) -> bool | None:
        """True/False for an owner on this host; None when it runs elsewhere."""
        if not self.is_local() or self.pid is None:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def make_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def current_owner(store) -> LockOwner | None:
    with store.begin() as conn:
        row = conn.execute(select(scheduler_lock).where(scheduler_lock.c.name == LOCK_NAME)).first()
    return LockOwner(row.owner, row.heartbeat_at) if row else None


class SchedulerLock:
    """The lease of one scheduler on ``store``'s database."""

    def __init__(self, store, owner: str | None = None, lease: float = 30.0, clock=utcnow):
        self.store = store
        self.owner = owner or make_owner()
        self.lease = float(lease)
        self.clock = clock
        self.held = False

    def acquire(self) -> None:
        """Take the lease or raise :class:`SchedulerLocked` naming who holds it."""
        now = to_db_time(self.clock())
        with self.store.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(scheduler_lock.insert().values(name=LOCK_NAME, owner=self.owner, heartbeat_at=now))
                self.held = True
                return
            except IntegrityError:
                pass
            row = conn.execute(select(scheduler_lock).where(scheduler_lock.c.name == LOCK_NAME)).first()
            holder = LockOwner(row.owner, row.heartbeat_at)
            stale = row.heartbeat_at < now - timedelta(seconds=self.lease)
            dead = holder.process_alive() is False
            if row.owner == self.owner or stale or dead:
                taken = conn.execute(
                    update(scheduler_lock)
                    .where(scheduler_lock.c.name == LOCK_NAME, scheduler_lock.c.owner == row.owner,
                           scheduler_lock.c.heartbeat_at == row.heartbeat_at)
                    .values(owner=self.owner, heartbeat_at=now)).rowcount
                if taken:
                    if row.owner != self.owner:
                        logger.warning("Took over the scheduler lease of %s (%s)", row.owner,
                                       "process gone" if dead else f"no heartbeat since {row.heartbeat_at:%H:%M:%S} UTC")
                    self.held = True
                    return
        age = (now - holder.heartbeat_at).total_seconds()
        raise SchedulerLocked(
            f"another scheduler is running on this database: {holder.owner} (host:pid:token), last heartbeat "
            f"{age:.0f}s ago. Stop it first (or use `newswatch reload` to make it re-read its schedules); "
            f"its lease expires {self.lease:.0f}s after its last heartbeat if it died.")

    def heartbeat(self) -> bool:
        """Renew the lease; False when another scheduler took it (stop scheduling then)."""
        now = to_db_time(self.clock())
        with self.store.begin() as conn:
            renewed = conn.execute(update(scheduler_lock)
                                   .where(scheduler_lock.c.name == LOCK_NAME, scheduler_lock.c.owner == self.owner)
                                   .values(heartbeat_at=now)).rowcount
        self.held = bool(renewed)
        return self.held

    def release(self) -> None:
        with self.store.begin() as conn:
            conn.execute(delete(scheduler_lock).where(scheduler_lock.c.name == LOCK_NAME,
                                                      scheduler_lock.c.owner == self.owner))
        self.held = False

    def take_reload_request(self) -> bool:
        """True once per ``newswatch reload`` left in the database (the request is removed)."""
        with self.store.begin() as conn:
            return bool(conn.execute(delete(scheduler_lock).where(scheduler_lock.c.name == RELOAD_NAME)).rowcount)


def request_reload(store, requester: str | None = None) -> None:
    """Leave a reload request for the scheduler of this database (picked up on its next heartbeat)."""
    now = utcnow()
    with store.begin() as conn:
        updated = conn.execute(update(scheduler_lock).where(scheduler_lock.c.name == RELOAD_NAME)
                               .values(owner=requester or make_owner(), heartbeat_at=now)).rowcount
        if not updated:
            conn.execute(scheduler_lock.insert().values(name=RELOAD_NAME, owner=requester or make_owner(),
                                                        heartbeat_at=now))
