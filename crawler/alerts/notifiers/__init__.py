"""Notification channels: webhook, e-mail, Apprise URLs, JSONL file.

:class:`NotifierRegistry` picks the channel for a target by its scheme:

=====================================  ================================
target                                 notifier
=====================================  ================================
``http://…``, ``https://…``            :class:`WebhookNotifier`
``mailto:user@host``                   :class:`EmailNotifier` (SMTP)
``file:///path.jsonl``, ``*.jsonl``    :class:`JsonlNotifier`
anything Apprise knows (``slack://``,  :class:`AppriseNotifier`
``discord://``, ``tgram://``,
``ntfy://``, ``json://`` …)
=====================================  ================================
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from crawler.alerts.notifiers.apprise import AppriseNotifier, apprise_knows
from crawler.alerts.notifiers.base import DEAD, RETRY, SENT, BaseNotifier, Delivery, Outcome, describe_target
from crawler.alerts.notifiers.email import EmailNotifier, parse_mailto
from crawler.alerts.notifiers.jsonl import JsonlNotifier, jsonl_path
from crawler.alerts.notifiers.webhook import WebhookNotifier
from crawler.exceptions import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "AppriseNotifier", "BaseNotifier", "Delivery", "EmailNotifier", "JsonlNotifier", "NotifierRegistry",
    "Outcome", "WebhookNotifier", "check_target", "describe_target", "target_channel",
    "SENT", "RETRY", "DEAD",
]

CHANNELS = ("webhook", "email", "jsonl", "apprise")


def target_channel(target: str) -> str:
    """Which channel serves ``target``: 'webhook', 'email', 'jsonl' or 'apprise'.

    Raises ConfigError naming the target when no channel knows it.
    """
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"target {target!r}: expected a URL such as https://…, mailto:…, file:///….jsonl "
                          f"or an Apprise URL")
    target = target.strip()
    try:
        scheme = urlsplit(target).scheme.lower()
    except ValueError as exc:
        raise ConfigError(f"target {target!r} is not a URL: {exc}") from exc
    if scheme in ("http", "https"):
        return "webhook"
    if scheme == "mailto":
        return "email"
    if scheme == "file" or (not scheme and target.endswith(".jsonl")):
        return "jsonl"
    if scheme and apprise_knows(target):
        return "apprise"
    raise ConfigError(f"target {target!r}: unknown notification scheme {scheme or '(none)'!r}; expected "
                      f"http(s)://, mailto:, file:///….jsonl or a URL Apprise supports")


def check_target(target: str) -> str:
    """Validate ``target`` fully (URL form, addresses, path); returns its channel or raises ConfigError."""
    channel = target_channel(target)
    if channel == "webhook":
        parts = urlsplit(target.strip())
        if not parts.hostname:
            raise ConfigError(f"target {target!r}: expected http(s)://host/path")
    elif channel == "email":
        parse_mailto(target.strip())
    elif channel == "jsonl":
        jsonl_path(target.strip())
    return channel


class NotifierRegistry:
    """One notifier per channel, built from settings on first use.

    ``notifiers`` replaces channels by name ('webhook', 'email', 'jsonl', 'apprise'),
    e.g. an :class:`EmailNotifier` pointed at a test SMTP server.
    """

    factories = {
        "webhook": WebhookNotifier.from_settings,
        "email": EmailNotifier.from_settings,
        "jsonl": lambda settings: JsonlNotifier(),
        "apprise": AppriseNotifier.from_settings,
    }

    def __init__(self, settings=None, notifiers: dict[str, BaseNotifier] | None = None):
        self.settings = settings or {}
        self._notifiers: dict[str, BaseNotifier] = dict(notifiers or {})

    def register(self, channel: str, notifier: BaseNotifier) -> None:
        if channel not in CHANNELS:
            raise ConfigError(f"notifier channel {channel!r}: expected one of {', '.join(CHANNELS)}")
        self._notifiers[channel] = notifier

    def for_target(self, target: str) -> BaseNotifier:
        """The notifier for ``target``; ConfigError if none knows it or it is not configured."""
        channel = target_channel(target)
        notifier = self._notifiers.get(channel)
        if notifier is None:
            notifier = self._notifiers[channel] = self.factories[channel](self.settings)
        return notifier

    def close(self) -> None:
        for notifier in self._notifiers.values():
            try:
                notifier.close()
            except Exception:
                logger.exception("Error closing the %s notifier", notifier.name)
