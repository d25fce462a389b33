"""Real receivers on loopback for the alert delivery tests: a webhook receiver and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crawler.alerts.notifiers.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, verify_signature


class WebhookReceiver:
    """Records POSTs; checks signatures; scripted answers (429, 500...); drops repeated alert ids.

    ``hold_first``: the first POST is recorded (and counted as delivered), then its answer
    waits until :meth:`release` - the shape of a sender killed during a send.
    """

    def __init__(self, secret: str | None = None, hold_first: bool = False):
        self.secret = secret
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}
        self.repeats = 0
        self.bad_signatures = 0
        self.script: deque[tuple[int, dict, bytes]] = deque()
        self.hold_first = hold_first
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self._released.set()

    def respond(self, status: int, headers: dict | None = None, body: bytes = b"", times: int = 1) -> None:
        """Answer the next ``times`` POSTs with ``status`` instead of 200."""
        for _ in range(times):
            self.script.append((status, headers or {}, body))

    def _handle(self, handler, body: bytes) -> None:
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            document = None
        alert_id = handler.headers.get(ALERT_ID_HEADER)
        with self._lock:
            first = not self.requests
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body,
                                  "json": document, "id": alert_id})
            scripted = self.script.popleft() if self.script else None
            signature_ok = self.secret is None or verify_signature(self.secret, body,
                                                                   handler.headers.get(SIGNATURE_HEADER))
            if not signature_ok:
                self.bad_signatures += 1
            elif scripted is None and alert_id:
                if alert_id in self.delivered:
                    self.repeats += 1
                else:
                    self.delivered[alert_id] = document
        if first and self.hold_first:
            self.arrived.set()
            self._released.wait(60)
        if not signature_ok:
            status, headers, reply = 401, {}, b"bad signature"
        else:
            status, headers, reply = scripted or (200, {}, b"ok")
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        try:
            handler.wfile.write(reply)
        except OSError:
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpCollector:
    """An aiosmtpd handler that keeps every message and can refuse recipients."""

    def __init__(self, refuse: set[str] | None = None):
        self.messages: list = []
        self.refuse = refuse or set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"


class DrivenClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime):
        self.now = start if start.tzinfo else start.replace(tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **kwargs) -> datetime:
        self.now += timedelta(seconds=seconds, **kwargs)
        return self.now


def make_store(request, tmp_path):
    """A store on SQLite (a fresh file) or PostgreSQL (one private schema per module, emptied per test).

    Creating a PostgreSQL schema costs ~0.5 s; sharing it across a module keeps the suite fast.
    ``store.test_url`` is the URL other processes can open.
    """
    from sqlalchemy import delete

    from crawler.store.repository import Store
    from crawler.store.schema import alerts, subscriptions

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newswatch.db'}"
        store = Store.from_url(url)
        store.test_url = url
        return store, True
    store = request.getfixturevalue("alerts_pg_store")
    with store.begin() as conn:
        conn.execute(delete(alerts))
        conn.execute(delete(subscriptions))
    return store, False


def module_pg_store(pg_server):
    """Generator behind the module-scoped ``alerts_pg_store`` fixture."""
    from conftest import drop_pg_schema, make_pg_schema_url
    from crawler.store.repository import Store

    schema, url = make_pg_schema_url(pg_server)
    store = Store.from_url(url)
    store.test_url = url
    try:
        yield store
    finally:
        store.dispose()
        drop_pg_schema(pg_server, schema)
