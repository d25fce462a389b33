"""``newswatch crawl --processes N``: the sources split over N crawler processes.

A one-process crawl sends pages to extraction workers, but everything else (Scrapy,
dedupe, stories, the store, matching) runs in that one process, which then limits the
crawl to about one core's worth of that work. With ``--processes N`` each process is a
whole crawl of its share of the sources (fetch, extract in-process, dedupe, stories,
store, match, outbox) into the same database, so N processes use N cores the way N bare
Scrapy processes do.

- Sources of one host stay in one process (one robots.txt, one politeness slot), unless
  a host has more sources than a process's fair share. Then its sources are spread, and
  every process divides that host's concurrency (and multiplies its download delay) by
  the number of processes that may crawl it at once (``--spread-host``, applied as
  ``DOWNLOAD_SLOTS``): the host is asked no more than by one process.
- Each process starts with a share of the sources (``split_sources``) but takes them
  one at a time, as its queue runs low, and when its own are done it takes over the
  ones the others have not started, from the end of their shares (:class:`SourceClaims`:
  a claim is a file created with ``O_EXCL`` in a directory the processes share, so each
  source is crawled by exactly one process). Sources differ in size, pages in cost, and
  processes in luck with the database's write lock: a fixed split left one process
  working alone at the end, on one core.
- Stories stay the same as in one process: processes sharing a database serialise their
  story decisions (see :mod:`crawler.dedupe.stories`), and a page two processes both
  fetched is stored once (the second is counted as already stored).
- The parent waits for every process, adds up their summaries, writes their output
  files into ``-o`` one after the other, and then sends the alerts they queued (unless
  ``--no-send``). SIGINT/SIGTERM are passed on, so each process stops the way a crawl
  stops; if the parent is killed, its processes get SIGTERM (Linux).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url).lower()


def split_sources(urls: list[str], processes: int) -> list[list[int]]:
    """Indices of ``urls`` per process: whole hosts, largest first, each to the process
    with the fewest sources so far; a host with more than ``ceil(len / processes)``
    sources is cut into pieces of that size first. Deterministic; no empty shard."""
    processes = max(1, min(processes, len(urls)))
    share = -(-len(urls) // processes)
    by_host: dict[str, list[int]] = defaultdict(list)
    for index, url in enumerate(urls):
        by_host[_host(url)].append(index)
    pieces = []
    for host in sorted(by_host):
        indices = by_host[host]
        pieces += [indices[i:i + share] for i in range(0, len(indices), share)]
    pieces.sort(key=lambda piece: (-len(piece), piece[0]))
    shards: list[list[int]] = [[] for _ in range(processes)]
    for piece in pieces:
        shards[min(range(processes), key=lambda k: (len(shards[k]), k))].extend(piece)
    return [sorted(shard) for shard in shards if shard]


def _spread_hosts(urls: list[str], shards: list[list[int]]) -> set[str]:
    """The hosts whose sources are in more than one shard."""
    holders: dict[str, set[int]] = defaultdict(set)
    for number, shard in enumerate(shards):
        for index in shard:
            holders[_host(urls[index])].add(number)
    return {host for host, numbers in holders.items() if len(numbers) > 1}


def claim_units(urls: list[str], shards: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """(units, homes): what the processes take one at a time (lists of source indices),
    and each process's own units, in order. A host whose sources are all in one shard
    is one unit, so it stays in one process; a host spread over several shards is a
    unit per source, any of which any process may take."""
    spread = _spread_hosts(urls, shards)
    units: list[list[int]] = []
    homes: list[list[int]] = []
    for shard in shards:
        home: list[int] = []
        whole: dict[str, int] = {}
        for index in shard:
            host = _host(urls[index])
            if host in spread:
                units.append([index])
                home.append(len(units) - 1)
            elif host in whole:
                units[whole[host]].append(index)
            else:
                whole[host] = len(units)
                units.append([index])
                home.append(len(units) - 1)
        homes.append(home)
    return units, homes


def spread_hosts(urls: list[str], shards: list[list[int]]) -> dict[str, int]:
    """Per host spread over several shards: how many processes may crawl it at once.
    Any process may take any of its sources, so as many as it has sources, at most
    one per process."""
    spread = _spread_hosts(urls, shards)
    counts: dict[str, int] = defaultdict(int)
    for url in urls:
        if _host(url) in spread:
            counts[_host(url)] += 1
    return {host: min(len(shards), n) for host, n in sorted(counts.items())}


def share_host_politeness(settings, spread: dict[str, int]) -> None:
    """In a process of ``--processes N``: for each host that ``n`` processes may crawl at
    once, ``1/n`` of its concurrency and ``n`` times its download delay (its
    ``DOWNLOAD_SLOTS`` entry, made from ``CONCURRENT_REQUESTS_PER_DOMAIN`` and
    ``DOWNLOAD_DELAY`` when it has none), so that the host is asked no more than by one
    process. Other hosts keep their own."""
    per_domain = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8)
    delay = settings.getfloat("DOWNLOAD_DELAY", 0.0)
    slots = {key: dict(value) for key, value in settings.getdict("DOWNLOAD_SLOTS").items()}
    for host, sharing in spread.items():
        slot = slots.setdefault(host, {})
        slot["concurrency"] = max(1, int(slot.get("concurrency", per_domain)) // sharing)
        if float(slot.get("delay", delay)) > 0:
            slot["delay"] = float(slot.get("delay", delay)) * sharing
        logger.info("%s is shared with %d processes: at most %d request(s) at once from this one%s", host, sharing,
                    slot["concurrency"], f", {slot['delay']:g} s apart" if slot.get("delay") else "")
    settings.set("DOWNLOAD_SLOTS", slots, priority="cmdline")


class SourceClaims:
    """The sources of a ``--processes`` crawl, taken as the processes go (see the module
    doc). A process takes a unit by creating its claim file with ``O_CREAT | O_EXCL``:
    of processes trying at once, exactly one succeeds, without a lock or a server."""

    def __init__(self, directory: Path, units: list[list[int]], homes: list[list[int]], process: int):
        self.directory = Path(directory)
        self.units = units
        self.homes = homes
        self.process = process
        self._home = frozenset(homes[process])

    @classmethod
    def from_plan(cls, path: str | Path, process: int) -> "SourceClaims":
        plan = json.loads(Path(path).read_text("utf-8"))
        return cls(Path(plan["claims"]), plan["units"], plan["homes"], process)

    def write_plan(self, path: Path) -> None:
        path.write_text(json.dumps({"claims": str(self.directory), "units": self.units, "homes": self.homes}),
                        encoding="utf-8")

    def order(self) -> list[int]:
        """This process's own units first; then the others', each from the end of its
        share (its process works from the start), taking from each in turn."""
        others = [list(reversed(home)) for number, home in enumerate(self.homes) if number != self.process]
        stolen = [unit for column in itertools.zip_longest(*others) for unit in column if unit is not None]
        return list(self.homes[self.process]) + stolen

    def is_home(self, unit: int) -> bool:
        return unit in self._home

    def taken(self, unit: int) -> bool:
        """Whether some process has taken ``unit`` already (cheap; :meth:`take` decides)."""
        return (self.directory / str(unit)).exists()

    def take(self, unit: int) -> bool:
        """Take ``unit`` for this process: True if no process had it."""
        try:
            handle = os.open(self.directory / str(unit), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        os.write(handle, str(self.process).encode())
        os.close(handle)
        return True


def crawl_in_processes(args, processes: int) -> tuple[int, dict[str, int]]:
    """Run the crawl of ``args`` (``newswatch crawl``'s arguments) as ``processes``
    child crawls; (exit code, summed summary)."""
    shards = split_sources(args.urls, processes)
    spread = spread_hosts(args.urls, shards)
    workdir = Path(tempfile.mkdtemp(prefix="newswatch-crawl-"))
    (workdir / "claims").mkdir()
    units, homes = claim_units(args.urls, shards)
    plan = workdir / "plan.json"
    SourceClaims(workdir / "claims", units, homes, 0).write_plan(plan)
    children: list[subprocess.Popen] = []
    parts, summaries = [], []
    # On a terminal, the parent draws the processes' summed counters on one line, as a
    # one-process crawl does; each process writes its own to a file for it.
    show_progress = sys.stderr.isatty() and not getattr(args, "summary_file", None)
    progress: list[Path] = []
    try:
        for number in range(len(shards)):
            part = workdir / f"part-{number}.jsonl"
            summary = workdir / f"summary-{number}.json"
            parts.append(part)
            summaries.append(summary)
            # Every process gets every source; the plan says which are its own to start
            # with, the claims which any process has taken.
            command = [sys.executable, "-m", "crawler.cli", *(["-v"] * args.verbose), "crawl",
                       *args.urls, "--processes", "1", "--no-send", "--summary-file", str(summary),
                       "-s", f"SOURCES_PLAN={plan}", "-s", f"SOURCES_PLAN_PROCESS={number}"]
            if args.db:
                command += ["--db", args.db]
            for query in args.watch:
                command += ["--watch", query]
            if args.output:
                command += ["-o", str(part)]
            for pair in args.set:
                command += ["-s", pair]
            # This process is its own worker: extraction and the store's batches run on
            # its reactor thread (no other thread to share the interpreter with). A store
            # thread would hold the database's write lock while it waits for the
            # interpreter, and the other processes' batches wait behind it; on the reactor
            # a batch that finds the lock taken goes back to the queue instead
            # (StorePipeline.flush). Measured: SQLite +5%, PostgreSQL +9%.
            command += ["-s", "EXTRACT_WORKERS=0", "-s", "STORE_THREAD=False"]
            for host, sharing in spread.items():
                command += ["--spread-host", f"{host}={sharing}"]
            if show_progress:
                progress.append(workdir / f"progress-{number}.json")
                command += ["-s", f"PROGRESS_FILE={progress[-1]}"]
            children.append(subprocess.Popen(command, preexec_fn=_stop_with_parent))
        logger.info("crawling %d sources in %d processes", len(args.urls), len(children))
        codes = _wait_passing_signals(children, (lambda: _draw_progress(progress)) if show_progress else None)
        if show_progress:
            _draw_progress(progress)  # the processes' final counters, then the line makes way
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
        total: dict[str, int] = {}
        for summary in summaries:
            if summary.exists():
                for key, value in json.loads(summary.read_text("utf-8")).items():
                    total[key] = total.get(key, 0) + int(value)
        if args.output:
            _join_outputs(parts, args.output)
        failed = [code for code in codes if code != 0]
        if failed:
            print(f"newswatch: {len(failed)} of {len(children)} crawl processes failed "
                  f"(exit codes {sorted(set(failed))})", file=sys.stderr)
        return (max(failed, key=abs) if failed else 0), total
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _stop_with_parent() -> None:
    """In each child, before it runs: SIGTERM when the parent dies, even by SIGKILL (Linux
    prctl PR_SET_PDEATHSIG), so a killed ``crawl --processes`` leaves no crawl behind;
    SIGTERM stops a crawl the way Ctrl-C does, storing what it fetched."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the children finish their crawl
        pass


def _draw_progress(paths: list[Path]) -> None:
    from crawler.progress import read_counters
    from crawler.runner import format_summary

    counters = read_counters(paths)
    if counters:
        sys.stderr.write("\r\x1b[2K" + format_summary(counters))
        sys.stderr.flush()


def _wait_passing_signals(children: list[subprocess.Popen], tick=None, interval: float = 0.5) -> list[int]:
    """Wait for every child, passing SIGINT/SIGTERM on; ``tick()`` every ``interval``
    seconds meanwhile (the progress line)."""
    def pass_on(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if tick is not None:
            for child in children:
                while True:
                    try:
                        child.wait(timeout=interval)
                        break
                    except subprocess.TimeoutExpired:
                        tick()
        return [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _join_outputs(parts: list[Path], output: str) -> None:
    """Append each process's JSON lines to ``output`` ('-': stdout), in process order."""
    if output == "-":
        target = sys.stdout.buffer
        for part in parts:
            if part.exists():
                with part.open("rb") as source:
                    shutil.copyfileobj(source, target)
        target.flush()
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as target:
        for part in parts:
            if part.exists():
                with part.open("rb") as source:
                    shutil.copyfileobj(source, target)
        target.flush()
        os.fsync(target.fileno())
