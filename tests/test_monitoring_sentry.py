"""Sentry, for real: SENTRY_DSN points at a receiver on loopback and we read the envelopes
sentry-sdk actually sends: spider and pipeline errors, once each, with source and URL.
(The daemon's Crons check-ins are checked in test_daemon_run's health test.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from daemon_helpers import ROOT, SentryReceiver, parse_envelope, wait_for


@pytest.fixture
def sentry():
    receiver = SentryReceiver()
    yield receiver
    receiver.close()


def test_parse_envelope():
    payload = b'{"a":"x\\ny"}'  # an escaped newline inside the JSON: the length header decides
    data = (b'{"event_id":"e1"}\n{"type":"event","length":%d}\n%s\n{"type":"check_in"}\n{"status":"ok"}\n'
            % (len(payload), payload))
    assert parse_envelope(data) == [({"type": "event", "length": len(payload)}, {"a": "x\ny"}),
                                    ({"type": "check_in"}, {"status": "ok"})]


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
