"""The pieces of the throughput benchmark: the served newsroom, measured process runs,
generated subscriptions, and one function per contender (baseline, newswatch, peer).

Measurements of a run (one or more processes started together):

- **wall**: from starting the processes to the last one's exit (start-up included);
- **CPU**: user + system seconds of the processes and every descendant they waited for
  (``getrusage(RUSAGE_CHILDREN)`` delta), or, when larger, the sum of the last CPU time
  ``/proc`` showed of every process of the trees (extraction workers started by a
  forkserver are nobody's waited-for children); as a percentage of one core;
- **peak RSS**: the largest sum, over the process trees, of ``VmRSS``, sampled every
  0.2 s from ``/proc``; **peak PSS** the same with ``Pss`` (shared pages split between
  the processes sharing them, so forked workers are not counted twice).
"""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.newsroom_gen import NOUNS, DEFAULT_SEED, Newsroom

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("NEWSWATCH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("NEWSWATCH_DB", None)
    return env


# -- the newsroom, served --------------------------------------------------------------


class ServedNewsroom:
    """The generated newsroom served by ``python -m bench.newsroom_gen serve`` in its own
    process. ``room`` is the same newsroom computed here (for URLs and checks)."""

    def __init__(self, articles: int = 5000, templates: int = 20, seed: int = DEFAULT_SEED,
                 epoch: datetime | None = None):
        self.room = Newsroom(articles, templates, seed, epoch)
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def start(self) -> "ServedNewsroom":
        room = self.room
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.newsroom_gen", "serve", "--articles", str(room.count),
             "--templates", str(room.templates), "--seed", str(room.seed), "--epoch", room.epoch.isoformat()],
            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # generating 5,000 articles takes a while on a busy machine
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the newsroom server did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "ServedNewsroom":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def feed_urls(self) -> list[str]:
        return [self.base_url + path for path in self.room.feed_paths()]

    def article_paths(self) -> list[str]:
        return [a.path for a in self.room.articles]

    def requests(self) -> Counter:
        """Requests served so far, per path (the count endpoint itself excluded)."""
        with urllib.request.urlopen(self.base_url + "/_bench/requests", timeout=30) as response:
            counts = Counter(json.loads(response.read()))
        counts.pop("/_bench/requests", None)
        return counts


# -- measuring processes ---------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                stack.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return pids


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of one process; zeros once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return rss, pss


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one live process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Measurement:
    wall: float
    cpu: float  # seconds
    peak_rss: int
    peak_pss: int
    returncodes: list[int]
    stderr: list[str] = field(default_factory=list)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(commands: list[list[str]], timeout: float = 1800, interval: float = 0.2,
            env: dict | None = None) -> Measurement:
    """Start ``commands`` together, wait for all, and measure them (see module doc)."""
    cpu_before = _children_cpu()
    started = time.monotonic()
    errs = [tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") for _ in commands]
    processes = [subprocess.Popen(cmd, cwd=ROOT, env=env or child_env(), stdout=subprocess.DEVNULL, stderr=err)
                 for cmd, err in zip(commands, errs)]
    peak = [0, 0]
    seen_cpu: dict[int, float] = {}  # last CPU time read of every process of the trees
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = pss = 0
            for process in processes:
                for pid in _tree(process.pid):
                    r, p = _memory(pid)
                    rss += r
                    pss += p
                    cpu = _cpu_seconds(pid)
                    if cpu is not None:
                        seen_cpu[pid] = cpu
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        codes = [process.wait(timeout=max(1.0, timeout - (time.monotonic() - started))) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        done.set()
        sampler.join()
    wall = time.monotonic() - started
    stderr = []
    for err in errs:
        err.seek(0)
        stderr.append(err.read())
        err.close()
    # getrusage counts the children and the descendants they waited for; workers started
    # by a forkserver are not waited for by the command, so the sum of what /proc showed
    # of every process of the trees (each read at most `interval` before it ended) is
    # taken when it is larger.
    cpu = max(_children_cpu() - cpu_before, sum(seen_cpu.values()))
    return Measurement(wall, cpu, peak[0], peak[1], codes, stderr)


# -- subscriptions ---------------------------------------------------------------------


def generate_queries(room: Newsroom, count: int = 1000, seed: int = 7) -> list[str]:
    """``count`` distinct, valid queries over the newsroom's vocabulary: names, phrases,
    AND/OR/NOT, NEAR, prefixes and title: scopes, most of them rarely matching."""
    rng = random.Random(seed)
    vocab = room.vocabulary
    queries: list[str] = []
    seen: set[str] = set()
    while len(queries) < count:
        kind = rng.random()
        noun, noun2, noun3 = rng.sample(NOUNS, 3)
        if kind < 0.30:
            query = f'"{rng.choice(vocab.people)}"'
        elif kind < 0.50:
            query = f'"{rng.choice(vocab.orgs)}" AND {noun}'
        elif kind < 0.65:
            query = f"title:{noun} {rng.choice(vocab.places).split()[0]}"
        elif kind < 0.75:
            query = f"{noun} NEAR/3 {noun2} {rng.choice(vocab.places).split()[0]}"
        elif kind < 0.85:
            a, b = rng.sample(vocab.places, 2)
            query = f'("{a}" OR "{b}") AND {noun} -{noun3}'
        elif kind < 0.95:
            query = f'{noun[:max(3, len(noun) - 3)]}* AND "{rng.choice(vocab.people)}"'
        else:
            query = f'title:"{rng.choice(vocab.orgs)}" OR title:"{rng.choice(vocab.people)}"'
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries


def add_subscriptions(db_url: str, queries: list[str], target: str) -> None:
    """Create the schema of ``db_url`` and one subscription per query (JSONL target)."""
    from crawler.alerts.subscriptions import add_subscription
    from crawler.store import Store

    store = Store.from_url(db_url)
    try:
        with store.begin() as conn:
            for n, query in enumerate(queries):
                add_subscription(conn, f"bench-{n:04d}", query, [target])
    finally:
        store.dispose()


def db_counts(db_url: str) -> dict[str, int]:
    """Rows stored by a crawl: articles, distinct canonical URLs, stories, alerts."""
    from sqlalchemy import func, select

    from crawler.store import Store
    from crawler.store import schema

    store = Store.from_url(db_url)
    try:
        with store.begin() as conn:
            counts = {
                "articles": conn.execute(select(func.count()).select_from(schema.articles)).scalar_one(),
                "urls": conn.execute(select(func.count(func.distinct(schema.articles.c.canonical_url)))).scalar_one(),
                "stories": conn.execute(select(func.count(func.distinct(schema.articles.c.story_id)))).scalar_one(),
            }
            counts["alerts"] = conn.execute(select(func.count()).select_from(schema.alerts)).scalar_one()
        return counts
    finally:
        store.dispose()


class PostgresSchema:
    """A private schema in the shared ``test`` database; its URL; dropped on exit."""

    def __init__(self, server: str = PG_SERVER):
        self.server = server
        self.name = "bench_" + uuid.uuid4().hex[:12]
        self.url = f"{server}?options=-csearch_path%3D{self.name}"

    def _execute(self, statement: str) -> None:
        from sqlalchemy import create_engine, text

        from crawler.store.repository import resolve_db_url

        engine = create_engine(resolve_db_url(self.server))
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def __enter__(self) -> "PostgresSchema":
        self._execute(f"CREATE SCHEMA {self.name}")
        return self

    def __exit__(self, *exc) -> None:
        self._execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


def postgres_available(server: str = PG_SERVER) -> bool:
    try:
        with PostgresSchema(server):
            return True
    except Exception as exc:  # noqa: BLE001 (any failure means: skip this contender)
        logger.warning("PostgreSQL at %s is not usable: %s", server, exc)
        return False


# -- contenders ------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    pages: int
    measurement: Measurement
    extra: dict = field(default_factory=dict)

    @property
    def pages_per_s(self) -> float:
        seconds = self.extra.get("seconds") or self.measurement.wall
        return self.pages / seconds if seconds else 0.0

    @property
    def cpu_ms_per_page(self) -> float:
        """CPU milliseconds per page, all processes of the run: robust to other load on
        the machine (a quiet 2-core machine does at most ~2,000 / this pages per second)."""
        cpu = self.extra.get("cpu") or self.measurement.cpu
        return 1000.0 * cpu / self.pages if self.pages else 0.0


def halves(items: list) -> list[list]:
    middle = (len(items) + 1) // 2
    return [part for part in (items[:middle], items[middle:]) if part]


def run_baseline(served: ServedNewsroom, workdir: Path) -> Result:
    """Two bare Scrapy + trafilatura processes, each with half of the feeds."""
    outs = [workdir / f"baseline-{n}.json" for n in range(2)]
    commands = [[sys.executable, "-m", "bench.baseline_spider", "--out", str(out), *urls]
                for out, urls in zip(outs, halves(served.feed_urls()))]
    measurement = measure(commands)
    _check(measurement, "baseline")
    counts = [json.loads(out.read_text("utf-8")) for out in outs[: len(commands)]]
    pages = sum(c["pages"] for c in counts)
    return Result("1 baseline: Scrapy + trafilatura, 2 processes", pages, measurement,
                  {"extracted": sum(c["extracted"] for c in counts)})


def run_newswatch(served: ServedNewsroom, db_url: str, workdir: Path, queries: list[str], label: str,
                  extra_args: list[str] = (), env: dict | None = None, wrap: list[str] = ()) -> Result:
    """``newswatch crawl`` of every feed into ``db_url`` (fresh), with ``queries`` as
    subscriptions; the articles and alerts it stored."""
    out = workdir / "articles.jsonl"
    out.unlink(missing_ok=True)
    add_subscriptions(db_url, queries, (workdir / "alerts.jsonl").as_uri())
    command = [*wrap, sys.executable, "-m", "crawler.cli", "crawl", *served.feed_urls(), "--db", db_url,
               "-o", str(out), *extra_args]
    measurement = measure([command], env=env)
    _check(measurement, label)
    counts = db_counts(db_url)
    summary = _summary(measurement.stderr[0])
    return Result(label, summary.get("fetched", counts["articles"]), measurement, {**counts, **summary})


def run_peer(room: Newsroom, sample: int, workdir: Path) -> Result:
    """news-please on ``sample`` pages (spread over every site), in 2 processes."""
    step = max(1, room.count // sample)
    indices = list(range(0, room.count, step))[:sample]
    outs = [workdir / f"peer-{n}.json" for n in range(2)]
    commands = [[sys.executable, "-m", "bench.peer", "--articles", str(room.count), "--templates",
                 str(room.templates), "--seed", str(room.seed), "--epoch", room.epoch.isoformat(),
                 "--indices", ",".join(map(str, part)), "--out", str(out)]
                for out, part in zip(outs, halves(indices))]
    measurement = measure(commands)
    _check(measurement, "news-please")
    counts = [json.loads(out.read_text("utf-8")) for out in outs[: len(commands)]]
    # Pages per second of the extraction loops only (their imports excluded): in favour of the peer.
    seconds = max(c["seconds"] for c in counts)
    return Result("4 news-please (from_html), 2 processes", sum(c["pages"] for c in counts), measurement,
                  {"seconds": seconds, "cpu": sum(c.get("cpu", 0.0) for c in counts),
                   "extracted": sum(c["extracted"] for c in counts)})


def _check(measurement: Measurement, label: str) -> None:
    for code, err in zip(measurement.returncodes, measurement.stderr):
        if code != 0:
            raise RuntimeError(f"{label} exited {code}:\n{err[-4000:]}")


def _summary(stderr: str) -> dict[str, int]:
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith("sources="):
            return {k: int(v) for k, v in (pair.split("=") for pair in line.split())}
    return {}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
