"""What every notifier shares: the message it sends and how its outcome is recorded.

A notifier's :meth:`BaseNotifier.run` wraps the subclass's :meth:`~BaseNotifier.send`
(the shape of Spidermon's actions): it turns whatever ``send`` raises into an
:class:`Outcome` and never lets one failing channel stop the others.

``send`` signals its result by raising:

- nothing: delivered;
- :class:`~crawler.exceptions.RetryLater`: come back after ``delay`` seconds (HTTP 429);
- :class:`~crawler.exceptions.DeliveryRefused` or
  :class:`~crawler.exceptions.ConfigError`: failed for good, do not retry;
- any other exception (:class:`~crawler.exceptions.DeliveryError`, timeouts,
  connection errors, bugs): failed this time, retry with backoff.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from crawler.alerts.render import clean_line
from crawler.exceptions import ConfigError, DeliveryError, DeliveryRefused, RetryLater

logger = logging.getLogger(__name__)

SENT, RETRY, DEAD = "sent", "retry", "dead"


@dataclass
class Delivery:
    """One message to one target: a single alert, or a digest/flood batch of several.

    ``id`` is stable across retries (the alert id, or the batch id of a group):
    receivers drop a message whose id they have already seen.
    """

    id: str
    target: str
    kind: str
    subscription: str
    items: list[dict]
    secret: str | None = None
    alert_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON document webhooks and JSONL files receive."""
        return {
            "id": self.id,
            "kind": self.kind,
            "subscription": self.subscription,
            "count": len(self.items),
            "alerts": self.items,
        }

    def body(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")


@dataclass
class Outcome:
    """What happened to one delivery: ``status`` is 'sent', 'retry' or 'dead'."""

    status: str
    error: str | None = None
    delay: float | None = None  # seconds the receiver asked us to wait (Retry-After)


def describe_target(target: str) -> str:
    """A target fit for logs: scheme and host only, never tokens or passwords.

    Apprise URLs carry their credentials in the path (``slack://T/B/C``), so only
    their scheme and a short hash are shown.
    """
    try:
        parts = urlsplit(target)
    except ValueError:
        parts = None
    digest = hashlib.sha256(target.encode("utf-8", "replace")).hexdigest()[:8]
    if parts and parts.scheme in ("http", "https"):
        port = _port(parts)
        return clean_line(f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}/…#{digest}")
    if parts and parts.scheme == "mailto":
        address = target.split(":", 1)[1].lstrip("/")
        return clean_line(f"mailto:{address}")
    if (parts and parts.scheme == "file") or target.endswith(".jsonl"):
        return clean_line(target)
    scheme = parts.scheme if parts and parts.scheme else "?"
    return clean_line(f"{scheme}://…#{digest}")


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


class BaseNotifier(ABC):
    """A notification channel. Subclasses implement :meth:`send`."""

    #: what ``newswatch alerts`` shows for this channel
    name = "base"

    def run(self, delivery: Delivery) -> Outcome:
        """Send ``delivery`` and return its outcome; never raises."""
        where = describe_target(delivery.target)
        try:
            self.send(delivery)
        except RetryLater as exc:
            return self._failed(RETRY, delivery, where, exc, delay=exc.delay)
        except (DeliveryRefused, ConfigError) as exc:
            return self._failed(DEAD, delivery, where, exc)
        except DeliveryError as exc:
            return self._failed(RETRY, delivery, where, exc)
        except Exception as exc:  # a bug or an unexpected library error: retry, but say so
            logger.error("%s notifier crashed sending alert %s to %s", self.name, delivery.id, where,
                         exc_info=True)
            return Outcome(RETRY, f"{type(exc).__name__}: {clean_line(exc, 500)}")
        logger.debug("Sent alert %s (%s, %d item(s)) to %s", delivery.id, delivery.kind, len(delivery.items), where)
        return Outcome(SENT)

    def _failed(self, status: str, delivery: Delivery, where: str, exc: Exception, delay=None) -> Outcome:
        message = clean_line(exc, 500)
        logger.warning("%s notifier could not send alert %s to %s (%s): %s", self.name, delivery.id, where,
                       "will retry" if status == RETRY else "gave up", message)
        return Outcome(status, f"{type(exc).__name__}: {message}", delay)

    @abstractmethod
    def send(self, delivery: Delivery) -> None:
        """Deliver ``delivery`` or raise (see the module docstring for what to raise)."""

    def close(self) -> None:
        """Release connections; the default has none."""
