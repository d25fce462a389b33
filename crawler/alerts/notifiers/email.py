"""Send each alert as an e-mail (text + HTML) over SMTP.

Targets are ``mailto:user@host`` or ``mailto://user@host`` (several recipients
separated by commas). The SMTP server comes from settings or the environment:
``ALERTS_SMTP_HOST`` (required), ``ALERTS_SMTP_PORT`` (25, or 465 with
``ALERTS_SMTP_SSL``), ``ALERTS_SMTP_FROM``, ``ALERTS_SMTP_USER``,
``ALERTS_SMTP_PASSWORD``, ``ALERTS_SMTP_STARTTLS`` (1/0), ``ALERTS_SMTP_TIMEOUT``.
Scraped text is HTML-escaped in the HTML part; headers are single sanitized lines.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import email.policy
from email.message import EmailMessage
from email.utils import formatdate

from crawler.alerts.notifiers.base import BaseNotifier, Delivery
from crawler.alerts.render import clean_line, render_html, render_subject, render_text
from crawler.exceptions import ConfigError, DeliveryError, DeliveryRefused

logger = logging.getLogger(__name__)

# Long enough that the 64-hex-digit alert id header is never folded (RFC 5322 allows 998).
_POLICY = email.policy.default.clone(max_line_length=200)
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+\.?[^@\s<>,;:\"()\[\]\\]*$")


def parse_mailto(target: str) -> list[str]:
    """The recipient addresses of a ``mailto:`` target; ConfigError if there are none or one is bad."""
    if not target.lower().startswith("mailto:"):
        raise ConfigError(f"target {target!r}: expected mailto:user@host")
    rest = target[len("mailto:"):].lstrip("/").split("?", 1)[0]
    addresses = [a.strip() for a in rest.split(",") if a.strip()]
    if not addresses:
        raise ConfigError(f"target {target!r}: expected mailto:user@host, found no address")
    for address in addresses:
        if not _ADDRESS.match(address):
            raise ConfigError(f"target {target!r}: {address!r} is not an e-mail address")
    return addresses


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class EmailNotifier(BaseNotifier):
    """E-mail over SMTP: a text part and an HTML part with escaped scraped text."""

    name = "email"

    def __init__(self, host: str, port: int = 25, sender: str = "newswatch@localhost",
                 user: str | None = None, password: str | None = None, starttls: bool = False,
                 use_ssl: bool = False, timeout: float = 30.0):
        if not host:
            raise ConfigError("e-mail alerts need an SMTP server: set ALERTS_SMTP_HOST")
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.user = user
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings=None) -> "EmailNotifier":
        """Settings win over the environment; ConfigError if ``ALERTS_SMTP_HOST`` is unset."""
        settings = settings or {}

        def get(key, default=None):
            value = settings.get(key)
            if value is None or value == "":
                value = os.environ.get(key, default)
            return value

        use_ssl = _flag(get("ALERTS_SMTP_SSL", "0"))
        try:
            port = int(get("ALERTS_SMTP_PORT", 465 if use_ssl else 25))
            timeout = float(get("ALERTS_SMTP_TIMEOUT", 30))
        except ValueError as exc:
            raise ConfigError(f"ALERTS_SMTP_PORT/ALERTS_SMTP_TIMEOUT: expected a number ({exc})") from exc
        return cls(
            host=get("ALERTS_SMTP_HOST"),
            port=port,
            sender=get("ALERTS_SMTP_FROM", "newswatch@localhost"),
            user=get("ALERTS_SMTP_USER"),
            password=get("ALERTS_SMTP_PASSWORD"),
            starttls=_flag(get("ALERTS_SMTP_STARTTLS", "0")),
            use_ssl=use_ssl,
            timeout=timeout,
        )

    def build_message(self, delivery: Delivery) -> EmailMessage:
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = clean_line(render_subject(delivery), 200)
        message["From"] = self.sender
        message["To"] = ", ".join(parse_mailto(delivery.target))
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{delivery.id}@newswatch>"  # the same on a retry: servers can drop repeats
        message["X-Newswatch-Alert-Id"] = delivery.id
        message.set_content(render_text(delivery))
        message.add_alternative(render_html(delivery), subtype="html")
        return message

    def send(self, delivery: Delivery) -> None:
        message = self.build_message(delivery)
        try:
            smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
            with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            error = DeliveryRefused if all(code >= 500 for code in codes) else DeliveryError
            raise error(f"SMTP refused the recipients: {exc.recipients!r}") from exc
        except smtplib.SMTPResponseException as exc:
            error = DeliveryRefused if exc.smtp_code >= 500 else DeliveryError
            raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from exc
