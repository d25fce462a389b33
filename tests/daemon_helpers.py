"""Helpers of the daemon tests: the daemon as a subprocess, waiting on conditions, reading
its database, and a Sentry receiver on loopback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select

from crawler.store import Store
from crawler.store.schema import sources

ROOT = Path(__file__).resolve().parent.parent

FAST = ["-s", "DAEMON_HEARTBEAT=1", "-s", "DAEMON_DISPATCH_INTERVAL=0.3", "-s", "RETRY_ENABLED=False",
        "-s", "DAEMON_SHUTDOWN_GRACE=20"]


def wait_for(condition, timeout: float = 120, interval: float = 0.2, what: str = "condition", daemon=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if daemon is not None and daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.process.returncode}) waiting for {what}\n{daemon.log()}")
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{daemon.log()}" if daemon else ""))


class DaemonProcess:
    """`python -m crawler.cli run` in a subprocess, its output in a log file."""

    def __init__(self, tmp_path: Path, schedules: Path, db_url: str, extra: list[str] | None = None,
                 env: dict | None = None):
        self.schedules = schedules
        self.db_url = db_url
        self.extra = FAST + list(extra or [])
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("NEWSWATCH_DB", None)
        self.log_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "DaemonProcess":
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "run", "--schedules", str(self.schedules), "--db", self.db_url,
             *self.extra], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def signal(self, sig) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


def write_schedules(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "news.toml").write_text(text, "utf-8")
    return directory


def g7_schedules(room, every: str = "1s", extra: str = "") -> str:
    return f"""
[[source]]
name = "room"
url = "{room.url('/feeds/main.rss')}"
every = "{every}"

[[subscription]]
name = "g7"
query = '"finance ministers"'
notify = ["{room.url('/hooks/g7')}"]
{extra}"""


class Db:
    def __init__(self, url: str):
        self.store = Store.from_url(url)

    def source(self, name: str) -> dict:
        with self.store.begin() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        return dict(row) if row else {}

    def runs(self, name: str) -> int:
        return self.source(name).get("runs") or 0

    def count(self, table, *where) -> int:
        with self.store.begin() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def hooks(room, path: str) -> list[dict]:
    return [h for h in list(room.hooks) if h["path"] == path]


def hook_ids(room, path: str, start: int = 0) -> list[str]:
    return [h["headers"].get("X-Newswatch-Alert-Id") for h in hooks(room, path)[start:]]



def parse_envelope(data: bytes) -> list[tuple[dict, object]]:
    """The (item header, payload) pairs of a Sentry envelope (https://develop.sentry.dev/sdk/envelopes/)."""
    lines = data.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"] + 1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        try:
            items.append((header, json.loads(payload)))
        except ValueError:
            items.append((header, payload))
    return items


class SentryReceiver:
    """A tiny Sentry ingestion endpoint on 127.0.0.1 that keeps every envelope item."""

    def __init__(self):
        self.items: list[tuple[dict, object]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                receiver.paths.append(self.path)
                receiver.items.extend(parse_envelope(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict]:
        return [p for h, p in list(self.items) if h.get("type") == "event"]

    def checkins(self, slug: str) -> list[dict]:
        return [p for h, p in list(self.items) if h.get("type") == "check_in" and p.get("monitor_slug") == slug]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
