"""Profile one benchmark crawl with py-spy (all processes: the crawler processes and any
extraction workers) and summarise where the time goes.

    python -m bench.profile_crawl [--articles 1000] [--db sqlite|postgresql] [--processes 2] [--out bench/profile]

Writes ``<out>/crawl-<db>.collapsed.txt.gz`` (py-spy's collapsed stacks, one line per
distinct stack with its sample count; open it in speedscope or flamegraph.pl after gunzip) and
``<out>/crawl-<db>.summary.txt`` (the tables below), and prints the summary.
``summarize(path)`` re-reads a collapsed file.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from bench.harness import PostgresSchema, ServedNewsroom, generate_queries, run_newswatch

# Buckets of inclusive time, first match wins (a frame's text is "function (file:line)").
BUCKETS = (
    ("extract: trafilatura", re.compile(r"\(trafilatura/")),
    ("extract: language (py3langid)", re.compile(r"py3langid")),
    ("extract: lxml parse (load_html)", re.compile(r"load_html")),
    ("extract: newswatch code", re.compile(r"\(crawler/extract/")),
    ("worker: pickling/IPC", re.compile(r"\((multiprocessing|concurrent/futures)/")),
    ("dedupe: stories (near-dup)", re.compile(r"\(crawler/dedupe/stories")),
    ("dedupe: fingerprints", re.compile(r"\(crawler/dedupe/fingerprints")),
    ("dedupe: exact/urls", re.compile(r"\(crawler/dedupe/")),
    ("match: alerts", re.compile(r"\(crawler/alerts/(matcher|query|text)")),
    ("alerts: outbox", re.compile(r"\(crawler/alerts/")),
    ("store: articles/repository", re.compile(r"\(crawler/store/")),
    ("database driver (sqlite3/psycopg)", re.compile(r"\((sqlite3|psycopg)/|execute \(sqlalchemy/engine/default")),
    ("SQLAlchemy", re.compile(r"\(sqlalchemy/")),
    ("feeds: parsing", re.compile(r"\(crawler/spiders/(parsing|feedxml)|\(feedparser/")),
    ("feed export (-o jsonl)", re.compile(r"\(scrapy/extensions/feedexport|\(scrapy/exporters")),
    ("spider callbacks", re.compile(r"\(crawler/spiders/")),
    ("Scrapy/Twisted HTTP + engine", re.compile(r"\((scrapy|twisted)/")),
    ("asyncio loop", re.compile(r"\(asyncio/")),
    ("imports / start-up", re.compile(r"<module>|_find_and_load")),
)


def compact(path: Path) -> None:
    """Shorten each stack's root frame (py-spy puts the whole command line there)."""
    lines = []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        root, sep, rest = stack.partition(";")
        if root.startswith("process ") and '"' in root:
            pid = root.split(":", 1)[0]
            root = f'{pid}:"{root.split(chr(34))[1].split(" crawl ")[0].split("/")[-1]} crawl ..."'
        lines.append(f"{root}{sep}{rest} {count}")
    with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    path.unlink()


def summarize(path: Path, top: int = 25) -> str:
    """Where the samples of a collapsed-stack file (``.gz`` or not) go: per process, per
    bucket, per function."""
    per_process: Counter[str] = Counter()
    buckets: dict[str, Counter[str]] = defaultdict(Counter)
    self_time: Counter[str] = Counter()
    total = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        root = frames[0]
        kind = "worker" if any("_process_worker" in f for f in frames) else "main"
        per_process[kind] += n
        bucket = "other"
        for name, pattern in BUCKETS:
            if any(pattern.search(f) for f in frames):
                bucket = name
                break
        buckets[kind][bucket] += n
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        if leaf.startswith("process "):  # a sample with no Python frame (native code, waiting)
            leaf = "(no Python frame)"
        self_time[leaf] += n
        del root
    lines = [f"{total:,} samples in {path.name}", ""]
    for kind in ("main", "worker"):
        if not per_process[kind]:
            continue
        lines.append(f"{'crawler' if kind == 'main' else kind} process{'es'}: {per_process[kind]:,} samples "
                     f"({100 * per_process[kind] / total:.0f}% of all)")
        for name, n in buckets[kind].most_common():
            lines.append(f"  {100 * n / per_process[kind]:5.1f}%  {name}")
        lines.append("")
    lines.append(f"top {top} functions by own time (all processes):")
    for name, n in self_time.most_common(top):
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_crawl", description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--processes", type=int, default=2,
                        help="newswatch crawl --processes (as contender 2 of python -m bench; 1: one "
                             "crawler process with extraction workers)")
    parser.add_argument("--send", action="store_true",
                        help="let the crawl also deliver the alerts it queued (default: --no-send, as "
                             "python -m bench)")
    parser.add_argument("--idle", action="store_true",
                        help="wall-clock profile: also sample threads while they wait (py-spy --idle), "
                             "each thread's stacks under its own root (--threads)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "profile"))
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    collapsed = out / f"crawl-{args.db}{'-idle' if args.idle else ''}.collapsed.txt"
    workdir = Path(tempfile.mkdtemp(prefix="newswatch-profile-"))
    wrap = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate), "--nonblocking",
            *(["--idle", "--threads"] if args.idle else []), "-o", str(collapsed), "--"]
    with ServedNewsroom(args.articles, args.templates) as served:
        queries = generate_queries(served.room, args.subscriptions)
        extra = ["--processes", str(args.processes)] + ([] if args.send else ["--no-send"])
        if args.db == "sqlite":
            result = run_newswatch(served, f"sqlite:///{workdir / 'profile.db'}", workdir, queries, "profile",
                                   extra, wrap=wrap)
        else:
            with PostgresSchema() as pg:
                result = run_newswatch(served, pg.url, workdir, queries, "profile", extra, wrap=wrap)
    shutil.rmtree(workdir, ignore_errors=True)
    header = (f"py-spy --subprocesses{' --idle --threads' if args.idle else ''} --rate {args.rate}, newswatch crawl --processes {args.processes} of "
              f"{args.articles} generated articles "
              f"{'(alerts delivered at the end) ' if args.send else ''}"
              f"({args.templates} templates) into {args.db}, {args.subscriptions} subscriptions: "
              f"{result.pages} pages in {result.measurement.wall:.1f} s (under py-spy)\n\n")
    compact(collapsed)
    summary = header + summarize(collapsed.with_name(collapsed.name + ".gz"))
    (out / f"crawl-{args.db}{'-idle' if args.idle else ''}.summary.txt").write_text(summary + "\n", "utf-8")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
