"""Sentry, for real: SENTRY_DSN points at a receiver on loopback and we read the envelopes
sentry-sdk actually sends (errors with source and URL, once; Crons check-ins per source)."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import ROOT
from test_daemon_run import Db, wait_for, write_schedules


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


@pytest.fixture
def sentry():
    receiver = SentryReceiver()
    yield receiver
    receiver.close()


def test_daemon_sends_crons_check_ins_per_source(tmp_path, newsroom, sentry):
    from test_daemon_run import DaemonProcess

    schedules = write_schedules(tmp_path / "schedules", f"""
[[source]]
name = "room"
url = "{newsroom.url('/feeds/main.rss')}"
every = "1s"

[[source]]
name = "Broken Feed"
url = "{newsroom.url('/feeds/broken.rss')}"
every = "1s"
""")
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    daemon = DaemonProcess(tmp_path, schedules, db, env={"SENTRY_DSN": sentry.dsn}).start()
    try:
        state = Db(db)
        wait_for(lambda: state.runs("room") >= 2 and state.runs("Broken Feed") >= 2, what="two runs each",
                 daemon=daemon)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.log()
    finally:
        daemon.stop()
    assert all(path == "/api/1/envelope/" for path in sentry.paths)
    ok = sentry.checkins("newswatch-room")
    broken = sentry.checkins("newswatch-broken-feed")
    assert {c["status"] for c in ok} == {"in_progress", "ok"}
    assert {c["status"] for c in broken} >= {"in_progress", "error"} and "ok" not in {c["status"] for c in broken}
    # Each run opens a check-in and closes the same one, with its duration.
    first = ok[0]
    closing = [c for c in ok if c["check_in_id"] == first["check_in_id"] and c["status"] != "in_progress"]
    assert first["status"] == "in_progress" and len(closing) == 1 and closing[0]["duration"] >= 0
    assert first["monitor_config"]["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}


SCRIPT = textwrap.dedent("""
    import sys
    from crawler.monitoring import flush_sentry, init_sentry
    assert init_sentry(sys.argv[1])
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class Exploding:
        def process_item(self, item, spider=None):
            raise RuntimeError("pipeline exploded")

    class Boom(scrapy.Spider):
        name = "boom"
        custom_settings = {"EXTENSIONS": {"crawler.monitoring.SentryExtension": 100},
                           "ITEM_PIPELINES": {"__main__.Exploding": 100}, "ROBOTSTXT_OBEY": False,
                           "TELNETCONSOLE_ENABLED": False, "LOG_LEVEL": "ERROR"}

        async def start(self):
            yield scrapy.Request(sys.argv[2], meta={"source_name": "boom-source"}, callback=self.parse_bad)
            yield scrapy.Request(sys.argv[3], meta={"source_name": "boom-source"})

        def parse_bad(self, response):
            raise ValueError("parser exploded")

        def parse(self, response):
            yield {"url": response.url, "source": "boom-source"}

    process = CrawlerProcess()
    process.crawl(Boom)
    process.start()
    flush_sentry()
""")


def test_spider_and_pipeline_errors_reach_sentry_once_with_source_and_url(tmp_path, newsroom, sentry):
    script = tmp_path / "boom.py"
    script.write_text(SCRIPT, "utf-8")
    bad, good = newsroom.url("/"), newsroom.url("/robots.txt")
    result = subprocess.run([sys.executable, str(script), sentry.dsn, bad, good], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(sentry.events()) >= 2, timeout=30, what="two events")
    events = sentry.events()
    kinds = sorted(e["exception"]["values"][-1]["type"] for e in events)
    assert kinds == ["RuntimeError", "ValueError"], [e.get("logentry") or e.get("exception") for e in events]
    by_type = {e["exception"]["values"][-1]["type"]: e for e in events}
    spider = by_type["ValueError"]
    assert spider["tags"]["stage"] == "spider" and spider["tags"]["source"] == "boom-source"
    assert spider["tags"]["url"] == bad and spider["contexts"]["newswatch"]["url"] == bad
    pipeline = by_type["RuntimeError"]
    assert pipeline["tags"]["stage"] == "pipeline" and pipeline["tags"]["url"] == good
    assert pipeline["exception"]["values"][-1]["value"] == "pipeline exploded"
