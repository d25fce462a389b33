"""Append each alert as one JSON line to a local file (``file:///path/alerts.jsonl``).

A bare path ending in ``.jsonl`` works too. Each line is the same document a
webhook receives, ``id`` included, written with one ``write()`` on a file opened
for appending and fsynced before the alert counts as sent. A crash between the
write and the outbox update can repeat a line: readers drop repeated ids.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from crawler.alerts.notifiers.base import BaseNotifier, Delivery
from crawler.exceptions import ConfigError, DeliveryError

logger = logging.getLogger(__name__)


def jsonl_path(target: str) -> Path:
    """The file a ``file://`` or ``*.jsonl`` target names."""
    if target.lower().startswith("file:"):
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"target {target!r}: expected file:///absolute/path.jsonl (a local file)")
        path = unquote(parts.path)
    else:
        path = target
    if not path or path.endswith("/"):
        raise ConfigError(f"target {target!r}: expected a file path")
    return Path(path).expanduser()


class JsonlNotifier(BaseNotifier):
    """One JSON line per alert appended to a local file (fsynced)."""

    name = "jsonl"

    def send(self, delivery: Delivery) -> None:
        path = jsonl_path(delivery.target)
        line = json.dumps(delivery.to_json(), ensure_ascii=False, sort_keys=True, default=str) + "\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"cannot append to {path}: {exc.strerror or exc}") from exc
