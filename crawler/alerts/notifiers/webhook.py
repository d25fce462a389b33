"""POST each alert as JSON to an http(s) URL, signed with the subscription's secret.

Headers: ``X-Newswatch-Alert-Id`` (stable across retries: drop repeats on it) and,
when the subscription has a secret (else ``ALERTS_WEBHOOK_SECRET``, if set),
``X-Newswatch-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body bytes. 2xx is success; 429 is retried after its
``Retry-After``; 408, 5xx, timeouts and connection errors are retried with backoff;
other answers (4xx, redirects) are refused for good. A 503 with ``Retry-After`` is
honoured like a 429.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import urllib.error
import urllib.request
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from crawler.alerts.notifiers.base import BaseNotifier, Delivery
from crawler.alerts.render import clean_line
from crawler.exceptions import DeliveryError, DeliveryRefused, RetryLater

logger = logging.getLogger(__name__)

ALERT_ID_HEADER = "X-Newswatch-Alert-Id"
SIGNATURE_HEADER = "X-Newswatch-Signature"
USER_AGENT = "newswatch-alerts/0.1"
MAX_RETRY_AFTER = 24 * 3600.0


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Newswatch-Signature`` value for ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: compare the header with the HMAC of the body, in constant time."""
    return bool(header) and hmac.compare_digest(sign_body(secret, body), header)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a POST must not silently become a GET elsewhere


class WebhookNotifier(BaseNotifier):
    """POST JSON to an http(s) URL, with an HMAC-SHA256 signature header."""

    name = "webhook"

    def __init__(self, timeout: float = 10.0, user_agent: str = USER_AGENT, default_secret: str | None = None):
        self.timeout = timeout
        self.user_agent = user_agent
        self.default_secret = default_secret  # for alerts without a subscription secret (health notices)
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def from_settings(cls, settings=None) -> "WebhookNotifier":
        settings = settings or {}
        timeout = settings.get("ALERTS_WEBHOOK_TIMEOUT") or os.environ.get("ALERTS_WEBHOOK_TIMEOUT") or 10
        secret = settings.get("ALERTS_WEBHOOK_SECRET") or os.environ.get("ALERTS_WEBHOOK_SECRET") or None
        return cls(timeout=float(timeout), default_secret=secret)

    def send(self, delivery: Delivery) -> None:
        body = delivery.body()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self.user_agent,
            ALERT_ID_HEADER: delivery.id,
        }
        secret = delivery.secret or self.default_secret
        if secret:
            headers[SIGNATURE_HEADER] = sign_body(secret, body)
        request = urllib.request.Request(delivery.target, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
                status = response.status
        except urllib.error.HTTPError as exc:
            self._raise_for(exc)
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"POST failed: {reason}") from exc
        if not 200 <= status < 300:
            raise DeliveryRefused(f"unexpected HTTP {status}")

    @staticmethod
    def _raise_for(exc: urllib.error.HTTPError) -> None:
        try:
            detail = clean_line(exc.read(300).decode("utf-8", "replace"), 200)
        except Exception:
            detail = ""
        finally:
            exc.close()
        message = f"HTTP {exc.code}" + (f": {detail}" if detail else "")
        delay = parse_retry_after(exc.headers.get("Retry-After"))
        if exc.code == 429 or (exc.code == 503 and delay is not None):
            raise RetryLater(message, delay)
        if exc.code == 408 or exc.code >= 500:
            raise DeliveryError(message)
        raise DeliveryRefused(message)
