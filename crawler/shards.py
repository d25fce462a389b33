"""``newswatch crawl --processes N``: the sources split over N crawler processes.

A one-process crawl sends pages to extraction workers, but everything else (Scrapy,
dedupe, stories, the store, matching) runs in that one process, which then limits the
crawl to about one core's worth of that work. With ``--processes N`` each process is a
whole crawl of its share of the sources (fetch, extract in-process, dedupe, stories,
store, match, outbox) into the same database, so N processes use N cores the way N bare
Scrapy processes do.

- Sources of one host stay in one process (one robots.txt, one politeness slot), unless
  a host has more sources than a process's fair share. Then its sources are spread, and
  each process that shares a host divides ``CONCURRENT_REQUESTS_PER_DOMAIN`` by the
  number of processes sharing it (``--hosts-shared-by``): the host sees no more parallel
  requests than from one process.
- Stories stay the same as in one process: processes sharing a database serialise their
  story decisions (see :mod:`crawler.dedupe.stories`), and a page two processes both
  fetched is stored once (the second is counted as already stored).
- The parent waits for every process, adds up their summaries, writes their output
  files into ``-o`` one after the other, and then sends the alerts they queued (unless
  ``--no-send``). SIGINT/SIGTERM are passed on, so each process stops the way a crawl
  stops; if the parent is killed, its processes get SIGTERM (Linux).
"""

from __future__ import annotations

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


def _shared_hosts(urls: list[str], shards: list[list[int]]) -> list[int]:
    """Per shard: the most processes any of its hosts is shared with (1: none shared)."""
    holders: dict[str, set[int]] = defaultdict(set)
    for number, shard in enumerate(shards):
        for index in shard:
            holders[_host(urls[index])].add(number)
    return [max(len(holders[_host(urls[index])]) for index in shard) for shard in shards]


def crawl_in_processes(args, processes: int) -> tuple[int, dict[str, int]]:
    """Run the crawl of ``args`` (``newswatch crawl``'s arguments) as ``processes``
    child crawls; (exit code, summed summary)."""
    shards = split_sources(args.urls, processes)
    sharing = _shared_hosts(args.urls, shards)
    workdir = Path(tempfile.mkdtemp(prefix="newswatch-crawl-"))
    children: list[subprocess.Popen] = []
    parts, summaries = [], []
    # On a terminal, the parent draws the processes' summed counters on one line, as a
    # one-process crawl does; each process writes its own to a file for it.
    show_progress = sys.stderr.isatty() and not getattr(args, "summary_file", None)
    progress: list[Path] = []
    try:
        for number, (shard, shared) in enumerate(zip(shards, sharing)):
            part = workdir / f"part-{number}.jsonl"
            summary = workdir / f"summary-{number}.json"
            parts.append(part)
            summaries.append(summary)
            command = [sys.executable, "-m", "crawler.cli", *(["-v"] * args.verbose), "crawl",
                       *(args.urls[i] for i in shard), "--processes", "1", "--no-send",
                       "--summary-file", str(summary)]
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
            command += ["-s", "EXTRACT_WORKERS=0", "-s", "STORE_THREAD=False", "--hosts-shared-by", str(shared)]
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
