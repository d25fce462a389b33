"""Send each alert to any Apprise URL: slack://, discord://, tgram://, ntfy://, json://...

The body is Markdown with scraped text Markdown-escaped; Apprise converts it for the
service. Apprise reports only success or failure, so every failure is retried with
backoff (a bad URL is refused at once).
"""

from __future__ import annotations

import logging

from crawler.alerts.notifiers.base import BaseNotifier, Delivery
from crawler.alerts.render import clean_line, render_markdown, render_subject
from crawler.exceptions import ConfigError, DeliveryError

logger = logging.getLogger(__name__)


def apprise_knows(target: str) -> bool:
    """Whether Apprise has a plugin for ``target`` and accepts its form."""
    import apprise

    return apprise.Apprise.instantiate(target, suppress_exceptions=True) is not None


class AppriseNotifier(BaseNotifier):
    """Any Apprise URL (chat and push services); Markdown body."""

    name = "apprise"

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings=None) -> "AppriseNotifier":
        settings = settings or {}
        return cls(timeout=float(settings.get("ALERTS_APPRISE_TIMEOUT") or 30))

    def send(self, delivery: Delivery) -> None:
        import apprise

        service = apprise.Apprise()
        if not service.add(delivery.target):
            raise ConfigError("target is not a URL Apprise knows")
        result = service.notify(
            body=render_markdown(delivery),
            title=clean_line(render_subject(delivery), 200),
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=self.timeout,
        )
        if not result:
            errors = [clean_line(entry.message if hasattr(entry, "message") else entry, 200)
                      for entry in _error_logs(result)]
            raise DeliveryError("Apprise could not notify" + (": " + "; ".join(errors[-3:]) if errors else ""))


def _error_logs(result) -> list:
    try:
        return [entry for entry in result.logs()
                if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR", "CRITICAL")]
    except Exception:  # older Apprise returns a bare bool
        return []
