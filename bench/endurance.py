"""Daemon endurance and alert latency (issue 6): ``python -m bench.endurance``.

1. **Endurance**: ``newswatch run`` (a real subprocess) against the fake newsroom with
   ``--sources`` sources polled every ``--interval`` seconds, until ``--runs`` scheduled
   runs are recorded; a story is published now and then so some runs store articles.
   Resident memory (VmRSS) and open file descriptors of the daemon are read from /proc
   after run 100, midway and at the end.
2. **Latency**: a fresh daemon polls one source every ``--poll`` seconds (2 s) with one
   instant subscription whose webhook is a receiver in this process; ``--samples``
   matching stories are published at random moments; the latency is from publication
   to the webhook's arrival.

Prints a table. Defaults finish in about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.demo import publish_story  # noqa: E402
from crawler.newsroom import Newsroom  # noqa: E402
from crawler.store.schema import runs  # noqa: E402


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_daemon(schedules: Path, db: str, log: Path, extra: list[str] = ()) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("SENTRY_DSN", None)
    return subprocess.Popen([sys.executable, "-m", "crawler.cli", "run", "--schedules", str(schedules), "--db", db,
                             "-s", "DAEMON_DISPATCH_INTERVAL=0.5", *extra], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def stop_daemon(process: subprocess.Popen) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return code, time.monotonic() - started


def count_runs(engine) -> int:
    from sqlalchemy.exc import OperationalError

    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(runs)).scalar_one()
    except OperationalError:  # the daemon is still creating its tables
        return 0


def endurance(work: Path, total_runs: int, sources: int, interval: float) -> dict:
    rng = random.Random(1)
    room = Newsroom(name="Endurance").start()
    number = 0
    for i in range(sources):
        for _ in range(3):
            number += 1
            publish_story(room, rng, number, feeds=(f"f{i}",))
    schedules = work / "endurance"
    schedules.mkdir()
    text = "".join(f'[[source]]\nname = "feed-{i}"\nurl = "{room.url(f"/feeds/f{i}.rss")}"\nevery = "{interval}s"\n\n'
                   for i in range(sources))
    text += (f'[[subscription]]\nname = "g7"\nquery = \'"finance ministers"\'\n'
             f'notify = ["{(work / "endurance-alerts.jsonl").as_uri()}"]\n')
    (schedules / "bench.toml").write_text(text)
    db_path = work / "endurance.db"
    db = f"sqlite:///{db_path}"
    process = start_daemon(schedules, db, work / "endurance.log", ["-s", "DAEMON_HEARTBEAT=2"])
    while not db_path.exists():
        time.sleep(0.2)
    engine = create_engine(db)
    samples: dict[str, tuple[int, int, int]] = {}
    started = time.monotonic()
    last_publish = started
    marks = {"after run 100": 100, "midway": total_runs // 2, "end": total_runs}
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"daemon exited early ({process.returncode}); see {work / 'endurance.log'}")
            done = count_runs(engine)
            for label, at in marks.items():
                if label not in samples and done >= at:
                    samples[label] = (done, proc_rss_kb(process.pid), proc_fds(process.pid))
                    print(f"  {label}: {done} runs, RSS {samples[label][1] / 1024:.1f} MiB, "
                          f"{samples[label][2]} fds ({time.monotonic() - started:.0f}s)", flush=True)
            if done >= total_runs:
                break
            if time.monotonic() - last_publish > 5:
                number += 1
                publish_story(room, rng, number, g7=number % 4 == 0, feeds=(f"f{number % sources}",))
                last_publish = time.monotonic()
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        code, stop_time = stop_daemon(process)
    finally:
        if process.poll() is None:
            process.kill()
        room.stop()
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all())
        mean_duration = conn.execute(select(func.avg(runs.c.duration))).scalar_one()
    engine.dispose()
    return {"samples": samples, "elapsed": elapsed, "exit": code, "stop_time": stop_time, "status": by_status,
            "mean_run": mean_duration, "stories": number}


class HookReceiver:
    """Records when each webhook POST arrives (monotonic clock of this process)."""

    def __init__(self):
        self.arrivals: list[tuple[float, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrivals.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/latency"


def latency(work: Path, samples: int, poll: float) -> dict:
    rng = random.Random(2)
    room = Newsroom(name="Latency").start()
    hooks = HookReceiver()
    for number in range(1, 4):
        publish_story(room, rng, number)
    schedules = work / "latency"
    schedules.mkdir()
    (schedules / "bench.toml").write_text(
        f'[[source]]\nname = "latency"\nurl = "{room.url("/feeds/main.rss")}"\nevery = "{poll}s"\n\n'
        f'[[subscription]]\nname = "g7"\nquery = \'"finance ministers"\'\nnotify = ["{hooks.url()}"]\n')
    db = f"sqlite:///{work / 'latency.db'}"
    process = start_daemon(schedules, db, work / "latency.log", ["-s", "DAEMON_DISPATCH_INTERVAL=0.25"])
    published: dict[str, float] = {}
    results: list[float] = []
    try:
        engine = None
        while engine is None or count_runs(engine) < 2:  # past the first run (the backlog, imports)
            if process.poll() is not None:
                raise SystemExit(f"daemon exited early; see {work / 'latency.log'}")
            time.sleep(0.2)
            if engine is None and (work / "latency.db").exists():
                engine = create_engine(db)
        for i in range(samples):
            time.sleep(rng.uniform(0.5, 2 * poll + 0.5))  # publish at random phases of the polling
            story = publish_story(room, rng, 100 + i, g7=True)
            published[story.path] = time.monotonic()
        deadline = time.monotonic() + 60
        while len({a[1]["alerts"][0]["url"] for a in hooks.arrivals}) < samples and time.monotonic() < deadline:
            time.sleep(0.1)
        code, _ = stop_daemon(process)
    finally:
        if process.poll() is None:
            process.kill()
        room.stop()
        hooks.server.shutdown()
    seen = set()
    for arrived, body in hooks.arrivals:
        url = body["alerts"][0]["url"]
        path = "/" + url.split("/", 3)[3]
        if path in published and path not in seen:
            seen.add(path)
            results.append(arrived - published[path])
    engine.dispose()
    return {"latencies": sorted(results), "expected": samples, "exit": code}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endurance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="scheduled runs in one daemon process (1000)")
    parser.add_argument("--sources", type=int, default=5, help="sources polled (5)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between runs of a source (0.5)")
    parser.add_argument("--samples", type=int, default=20, help="stories published for the latency test (20)")
    parser.add_argument("--poll", type=float, default=2.0, help="polling interval of the latency test (2 s)")
    parser.add_argument("--skip-endurance", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="newswatch-endurance-"))
    print(f"work directory: {work}  (cores: {os.cpu_count()})", flush=True)
    rows = []
    if not args.skip_endurance:
        print(f"Endurance: {args.runs} runs, {args.sources} sources every {args.interval:g}s", flush=True)
        result = endurance(work, args.runs, args.sources, args.interval)
        s = result["samples"]
        first, end = s.get("after run 100"), s.get("end")
        growth = (end[1] - first[1]) / first[1] * 100 if first and end else float("nan")
        rows += [
            ("scheduled runs (ok/error/cancelled)", f"{sum(result['status'].values())} "
             f"({result['status'].get('ok', 0)}/{result['status'].get('error', 0)}/"
             f"{result['status'].get('cancelled', 0)}) in {result['elapsed']:.0f}s"),
            ("mean run duration", f"{result['mean_run']:.2f}s"),
            ("RSS after run 100", f"{first[1] / 1024:.1f} MiB" if first else "-"),
            ("RSS midway", f"{s['midway'][1] / 1024:.1f} MiB" if "midway" in s else "-"),
            ("RSS at the end", f"{end[1] / 1024:.1f} MiB" if end else "-"),
            ("RSS growth after run 100 (target < 10%)", f"{growth:+.1f}%"),
            ("open fds after 100 / midway / end", " / ".join(str(s[k][2]) if k in s else "-"
                                                             for k in ("after run 100", "midway", "end"))),
            ("SIGTERM to exit (code)", f"{result['stop_time']:.1f}s ({result['exit']})"),
        ]
    if not args.skip_latency:
        print(f"Latency: {args.samples} stories, polling every {args.poll:g}s", flush=True)
        result = latency(work, args.samples, args.poll)
        lat = result["latencies"]
        if lat:
            p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
            rows += [
                (f"publish-to-webhook latency, {args.poll:g}s polling: median", f"{statistics.median(lat):.2f}s"),
                ("                                          p95", f"{p95:.2f}s"),
                ("                                          min / max", f"{lat[0]:.2f}s / {lat[-1]:.2f}s"),
                ("alerts received / stories published", f"{len(lat)} / {result['expected']}"),
            ]
    width = max(len(r[0]) for r in rows) if rows else 0
    print()
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
