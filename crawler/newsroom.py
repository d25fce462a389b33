"""A fake newsroom on loopback: a real HTTP server publishing articles behind RSS, Atom
and JSON feeds, for the tests, the demo and the benchmarks.

It can publish a new article between two crawls, answer conditional GETs with 304,
and misbehave on demand (``fault(path, "status", code=500)``, ``"slow"``, ``"garbage"``,
``"empty"``, ``"binary"``, ``"redirect"``, ``"malformed_feed"``). It records every request
and accepts webhook POSTs under ``/hooks/``.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


@dataclass
class Story:
    """One published article: its page and what the feeds say of it."""

    path: str
    title: str
    body: bytes
    published: datetime
    guid: str
    summary: str = ""
    content_type: str = "text/html; charset=utf-8"
    feeds: tuple[str, ...] = ("main",)


@dataclass
class Fault:
    kind: str
    options: dict = field(default_factory=dict)
    times: int | None = None  # None: forever


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a crawler timing out) is not worth a traceback."""

    def handle_error(self, request, client_address):
        logger.debug("newsroom: client %s went away", client_address)


class Newsroom:
    """A newsroom server. ``with Newsroom() as room: room.url("/feeds/main.rss")``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "Newsroom"):
        self.name = name
        self.stories: list[Story] = []
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.hooks: list[dict] = []
        self.feed_changed: dict[str, datetime] = {}
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once (politeness checks)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = _QuietServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> "Newsroom":
        self._thread = threading.Thread(target=self.server.serve_forever, name="newsroom", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Newsroom":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- content ----------------------------------------------------------------------

    def add_page(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8") -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            self.pages[path] = (content_type, body)

    def publish(self, path: str, body: bytes | str, title: str, published: datetime | None = None,
                guid: str | None = None, summary: str = "", feeds: tuple[str, ...] = ("main",),
                content_type: str = "text/html; charset=utf-8") -> Story:
        """Put an article page online and announce it in the given feeds."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        published = published or datetime.now(timezone.utc).replace(microsecond=0)
        story = Story(path=path, title=title, body=body, published=published,
                      guid=guid or self.url(path), summary=summary, content_type=content_type, feeds=feeds)
        with self._lock:
            self.stories.append(story)
            self.pages[path] = (content_type, body)
            now = datetime.now(timezone.utc).replace(microsecond=0)
            for feed in feeds:
                previous = self.feed_changed.get(feed)
                # Last-Modified has one-second resolution: never reuse the previous value.
                if previous is not None and now <= previous:
                    now = previous + timedelta(seconds=1)
                self.feed_changed[feed] = now
        return story

    def fault(self, path: str, kind: str, times: int | None = None, **options) -> None:
        """Make ``path`` misbehave: status(code), slow(seconds), garbage, empty, binary,
        redirect(to), malformed_feed, hang (until ``release()``)."""
        with self._lock:
            self.faults[path] = Fault(kind, options, times)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
        self._release.set()
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def requested(self, path_prefix: str = "/") -> list[str]:
        with self._lock:
            return [path for method, path, _ in self.requests if path.startswith(path_prefix)]

    # -- feeds ------------------------------------------------------------------------

    def _feed_stories(self, feed: str, limit: int = 50) -> list[Story]:
        stories = [s for s in self.stories if feed in s.feeds]
        return sorted(stories, key=lambda s: s.published, reverse=True)[:limit]

    def render_feed(self, feed: str, kind: str) -> tuple[str, bytes]:
        stories = self._feed_stories(feed)
        if kind == "json":
            document = {
                "version": "https://jsonfeed.org/version/1.1", "title": f"{self.name} — {feed}",
                "home_page_url": self.url("/"), "feed_url": self.url(f"/feeds/{feed}.json"),
                "items": [{"id": s.guid, "url": self.url(s.path), "title": s.title,
                           "summary": s.summary, "date_published": s.published.isoformat()}
                          for s in stories],
            }
            return "application/feed+json", json.dumps(document).encode("utf-8")
        if kind == "atom":
            entries = "".join(
                f"<entry><id>{html.escape(s.guid)}</id><title>{html.escape(s.title)}</title>"
                f'<link rel="alternate" href="{html.escape(self.url(s.path))}"/>'
                f"<updated>{s.published.isoformat()}</updated><published>{s.published.isoformat()}</published>"
                f"<summary>{html.escape(s.summary)}</summary></entry>" for s in stories)
            body = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                    f"<title>{html.escape(self.name)}</title><id>{self.url('/')}</id>"
                    f"<updated>{datetime.now(timezone.utc).isoformat()}</updated>{entries}</feed>")
            return "application/atom+xml; charset=utf-8", body.encode("utf-8")
        items = "".join(
            f"<item><title>{html.escape(s.title)}</title><link>{html.escape(self.url(s.path))}</link>"
            f'<guid isPermaLink="false">{html.escape(s.guid)}</guid>'
            f"<pubDate>{email.utils.format_datetime(s.published)}</pubDate>"
            f"<description>{html.escape(s.summary)}</description></item>" for s in stories)
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>{html.escape(self.name)}</title><link>{self.url('/')}</link>"
                f"<description>{html.escape(self.name)}</description>{items}</channel></rss>")
        return "application/rss+xml; charset=utf-8", body.encode("utf-8")

    def home_page(self) -> bytes:
        links = "".join(f'<li><a href="{s.path}">{html.escape(s.title)}</a></li>'
                        for s in self._feed_stories("main", 20))
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.name)}'
                f'</title><link rel="alternate" type="application/rss+xml" title="{html.escape(self.name)}" '
                f'href="/feeds/main.rss"></head><body><h1>{html.escape(self.name)}</h1><ul>{links}</ul>'
                f"</body></html>").encode("utf-8")

    # -- HTTP -------------------------------------------------------------------------

    def _handler_class(self):
        room = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep test output quiet
                logger.debug("newsroom: " + fmt, *args)

            def do_GET(self):
                room._counted(room._serve, self)

            def do_HEAD(self):
                room._counted(room._serve, self, head=True)

            def do_POST(self):
                room._receive(self)

        return Handler

    def _counted(self, serve, handler, **kwargs) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            serve(handler, **kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _send(self, handler, status: int, body: bytes = b"", content_type: str = "text/plain",
              headers: dict | None = None, head: bool = False) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if not head and body:
            handler.wfile.write(body)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            fault = self.faults.get(path)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[path]
            return fault

    def _serve(self, handler, head: bool = False) -> None:
        path = urlsplit(handler.path).path or "/"
        with self._lock:
            self.requests.append(("GET", handler.path, dict(handler.headers)))
        fault = self._take_fault(path)
        if fault is not None and self._apply_fault(handler, fault, head):
            return
        if path == "/robots.txt":
            return self._send(handler, 200, ROBOTS_TXT, head=head)
        if path == "/":
            return self._send(handler, 200, self.home_page(), "text/html; charset=utf-8", head=head)
        if path.startswith("/feeds/"):
            name, _, kind = path[len("/feeds/"):].rpartition(".")
            if kind in ("rss", "atom", "json") and name in self.feed_changed:
                return self._serve_feed(handler, name, kind, fault, head)
        with self._lock:
            page = self.pages.get(path)
        if page is None:
            return self._send(handler, 404, b"not found", head=head)
        self._send(handler, 200, page[1], page[0], head=head)

    def _serve_feed(self, handler, name: str, kind: str, fault: Fault | None, head: bool) -> None:
        with self._lock:
            content_type, body = self.render_feed(name, kind)
            changed = self.feed_changed[name]
        if fault is not None and fault.kind == "malformed_feed":
            body = body[: len(body) // 2] + b"<<<&&& not xml"
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        last_modified = email.utils.format_datetime(changed, usegmt=True)
        if handler.headers.get("If-None-Match") == etag:
            return self._send(handler, 304, headers={"ETag": etag, "Last-Modified": last_modified})
        since = handler.headers.get("If-Modified-Since")
        if since and not handler.headers.get("If-None-Match"):
            try:
                if email.utils.parsedate_to_datetime(since) >= changed:
                    return self._send(handler, 304, headers={"ETag": etag, "Last-Modified": last_modified})
            except (TypeError, ValueError):
                pass
        self._send(handler, 200, body, content_type, {"ETag": etag, "Last-Modified": last_modified}, head)

    def _apply_fault(self, handler, fault: Fault, head: bool) -> bool:
        """Answer with the fault; False lets the normal answer through (after a delay)."""
        kind, options = fault.kind, fault.options
        if kind == "status":
            code = options.get("code", 500)
            headers = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            self._send(handler, code, f"error {code}".encode(), headers=headers, head=head)
            return True
        if kind == "slow":
            time.sleep(options.get("seconds", 5))
            return False
        if kind == "hang":
            self._release.wait(options.get("seconds", 60))
            return False
        if kind == "garbage":
            self._send(handler, 200, bytes(range(256)) * 40, "text/html", head=head)
            return True
        if kind == "empty":
            self._send(handler, 200, b"", "text/html; charset=utf-8", head=head)
            return True
        if kind == "binary":
            self._send(handler, 200, b"%PDF-1.4\n" + bytes(range(256)) * 8, "application/pdf", head=head)
            return True
        if kind == "redirect":
            self._send(handler, 301, headers={"Location": options["to"]}, head=head)
            return True
        return False

    def _receive(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests.append(("POST", handler.path, dict(handler.headers)))
            self.hooks.append({"path": path, "headers": dict(handler.headers), "body": body})
        fault = self._take_fault(path)
        if fault is not None and self._apply_fault(handler, fault, head=False):
            return
        self._send(handler, 200, b"ok")
