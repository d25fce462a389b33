"""Notifiers end to end against real receivers on loopback; rendering and escaping of untrusted text."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from crawler.alerts.notifiers import (
    AppriseNotifier, BaseNotifier, Delivery, EmailNotifier, JsonlNotifier, NotifierRegistry, WebhookNotifier,
    check_target, describe_target,
)
from crawler.alerts.notifiers.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, parse_retry_after, sign_body
from crawler.alerts.render import (
    escape_markdown, make_snippet, mark_html, mark_markdown, mark_plain, render_markdown, safe_url,
    sanitize_terminal,
)
from crawler.exceptions import ConfigError, DeliveryError

from alerts_support import SmtpCollector, WebhookReceiver, free_port

HOSTILE_TITLE = "<script>alert(1)</script> *Breaking* [news](javascript:x) \x1b[2J\x1b]0;pwned\x07"
HOSTILE_TEXT = ("Intro words. " * 30 + "La Corée du Nord: <b>Kim Jong-un</b> a parlé *fort* & clair. "
                + "More words follow here. " * 30)


def make_delivery(target: str, secret: str | None = None, kind: str = "article", n: int = 1) -> Delivery:
    items = []
    for i in range(n):
        snippet, highlights = make_snippet(HOSTILE_TEXT, ["kim jong un", "coree"])
        items.append({
            "id": f"alert-{i}", "title": HOSTILE_TITLE if i == 0 else f"Story {i}",
            "url": "https://news.example.org/a?x=1&y=<2>", "source": "Example \x1b[31mNews",
            "published": "2026-01-14T09:30:00+00:00", "snippet": snippet, "highlights": highlights,
            "terms": ["kim jong un", "coree"], "story_size": 4, "also_reported_by": [],
        })
    return Delivery(id="a" * 64 if n == 1 else "b" * 64, target=target, kind=kind, subscription="korea",
                    items=items, secret=secret, alert_ids=[f"alert-{i}" for i in range(n)])


@pytest.fixture
def receiver():
    server = WebhookReceiver(secret="s3cret").start()
    yield server
    server.stop()


# -- rendering ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("plain text", "plain text"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("a\x1b]8;;http://evil/\x07link\x1b]8;;\x07b", "alinkb"),  # OSC 8 hyperlink
    ("title\x1b]0;owned\x1b\\x", "titlex"),  # OSC with ST terminator
    ("x\x9b31my", "xy"),  # 8-bit CSI
    ("bell\x07 back\x08space\r\nnext", "bell backspace\nnext"),
    ("\u202eevil\u202c", "evil"),  # bidi override
    ("DCS\x1bPq#0;2;0;0;0\x1b\\end", "DCSend"),
    ("lone \x1b", "lone "),
    ("tabs\tstay", "tabs\tstay"),
])
def test_sanitize_terminal_strips_controls_and_escape_sequences(raw, expected):
    assert sanitize_terminal(raw) == expected


def test_sanitize_terminal_single_line_for_logs():
    assert sanitize_terminal("line one\nFAKE LOG RECORD\x1b[1m", single_line=True) == "line one FAKE LOG RECORD"


def test_escape_markdown_neutralises_links_and_emphasis():
    assert escape_markdown("[click](javascript:x) *b* _i_ `c` <u>") == \
        r"\[click\]\(javascript:x\) \*b\* \_i\_ \`c\` \<u\>"


def test_snippet_centres_on_first_term_accent_and_hyphen_insensitive():
    snippet, spans = make_snippet(HOSTILE_TEXT, ["kim jong un", "coree"])
    assert len(snippet) <= 302
    assert snippet.startswith("…") and snippet.endswith("…")
    marked = [snippet[a:b] for a, b in spans]
    assert marked == ["Corée", "Kim Jong-un"]
    assert "[Corée]" in mark_plain(snippet, spans)
    assert "**Kim Jong\\-un**" not in mark_markdown(snippet, spans)  # '-' is not special inline
    assert "**Kim Jong-un**" in mark_markdown(snippet, spans)
    assert "\\*fort\\*" in mark_markdown(snippet, spans)
    html = mark_html(snippet, spans)
    assert "<mark>Corée</mark>" in html and "&lt;b&gt;<mark>Kim Jong-un</mark>&lt;/b&gt;" in html


def test_snippet_prefix_term_and_no_match():
    snippet, spans = make_snippet("Ukrainian officials said", ["ukrain*"])
    assert [snippet[a:b] for a, b in spans] == ["Ukrainian"]
    snippet, spans = make_snippet("Nothing relevant " * 40, ["absent"])
    assert spans == [] and snippet.startswith("Nothing relevant") and len(snippet) <= 301


def test_unsafe_urls_are_not_linked():
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("https://x.org/a b<c>") == "https://x.org/a%20b%3Cc%3E"
    markdown = render_markdown(Delivery("id", "x", "article", "s", [{"title": "T", "url": "javascript:alert(1)"}]))
    assert "javascript" not in markdown


# -- webhook --------------------------------------------------------------------------

def test_webhook_posts_signed_json_with_alert_id(receiver):
    delivery = make_delivery(receiver.url, secret="s3cret")
    outcome = WebhookNotifier(timeout=5).run(delivery)
    assert outcome.status == "sent", outcome.error
    [request] = receiver.requests
    assert request["headers"][ALERT_ID_HEADER] == delivery.id
    assert request["headers"][SIGNATURE_HEADER] == sign_body("s3cret", request["body"])
    assert receiver.bad_signatures == 0
    assert request["json"]["id"] == delivery.id
    assert request["json"]["alerts"][0]["title"] == HOSTILE_TITLE  # JSON carries data, receivers escape
    assert request["headers"]["Content-Type"].startswith("application/json")


def test_webhook_wrong_secret_is_refused_for_good(receiver):
    outcome = WebhookNotifier(timeout=5).run(make_delivery(receiver.url, secret="wrong"))
    assert outcome.status == "dead" and "401" in outcome.error
    assert receiver.bad_signatures == 1


def test_webhook_without_secret_sends_no_signature():
    server = WebhookReceiver().start()
    try:
        assert WebhookNotifier().run(make_delivery(server.url)).status == "sent"
        assert SIGNATURE_HEADER not in server.requests[0]["headers"]
    finally:
        server.stop()


def test_webhook_429_retry_after_seconds(receiver):
    receiver.respond(429, {"Retry-After": "120"})
    outcome = WebhookNotifier().run(make_delivery(receiver.url, secret="s3cret"))
    assert (outcome.status, outcome.delay) == ("retry", 120.0)
    assert "429" in outcome.error


def test_webhook_429_retry_after_http_date(receiver):
    when = datetime.now(timezone.utc) + timedelta(seconds=600)
    receiver.respond(429, {"Retry-After": format_datetime(when, usegmt=True)})
    outcome = WebhookNotifier().run(make_delivery(receiver.url, secret="s3cret"))
    assert outcome.status == "retry" and 590 <= outcome.delay <= 600


def test_parse_retry_after():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("999999999") == 24 * 3600.0


@pytest.mark.parametrize("status, expected", [(500, "retry"), (503, "retry"), (408, "retry"),
                                              (404, "dead"), (400, "dead"), (301, "dead")])
def test_webhook_status_codes(receiver, status, expected):
    receiver.respond(status, {"Location": "http://127.0.0.1:1/"} if status == 301 else {}, b"<oops>\x1b[2J")
    outcome = WebhookNotifier().run(make_delivery(receiver.url, secret="s3cret"))
    assert outcome.status == expected
    assert f"HTTP {status}" in outcome.error and "\x1b" not in outcome.error


def test_webhook_connection_refused_is_retried():
    outcome = WebhookNotifier(timeout=2).run(make_delivery(f"http://127.0.0.1:{free_port()}/hook"))
    assert outcome.status == "retry"


def test_webhook_timeout_is_retried():
    server = WebhookReceiver(hold_first=True).start()
    try:
        outcome = WebhookNotifier(timeout=0.3).run(make_delivery(server.url))
        assert outcome.status == "retry" and "timed out" in outcome.error
    finally:
        server.stop()


# -- e-mail ---------------------------------------------------------------------------

@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    handler = SmtpCollector(refuse={"nobody@example.org"})
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def test_email_multipart_with_escaped_html(smtp):
    controller, handler = smtp
    notifier = EmailNotifier(host="127.0.0.1", port=controller.port, sender="alerts@newswatch.test")
    delivery = make_delivery("mailto:reader@example.org")
    outcome = notifier.run(delivery)
    assert outcome.status == "sent", outcome.error
    [envelope] = handler.messages
    assert envelope.rcpt_tos == ["reader@example.org"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["X-Newswatch-Alert-Id"] == delivery.id
    assert "\x1b" not in message["Subject"] and "<script>" in message["Subject"]  # a header is plain text
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "[Corée]" in text and "[Kim Jong-un]" in text and "\x1b" not in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<mark>Kim Jong-un</mark>" in html and "&lt;b&gt;" in html
    assert 'href="https://news.example.org/a?x=1&amp;y=%3C2%3E"' in html
    assert "also reported by 3 other sources" in text


def test_email_digest_lists_every_story(smtp):
    controller, handler = smtp
    notifier = EmailNotifier(host="127.0.0.1", port=controller.port)
    assert notifier.run(make_delivery("mailto://reader@example.org", kind="digest", n=3)).status == "sent"
    message = email.message_from_bytes(handler.messages[0].content, policy=email.policy.default)
    assert "digest, 3 stories" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "Story 1" in text and "Story 2" in text


def test_email_refused_recipient_is_dead(smtp):
    controller, handler = smtp
    notifier = EmailNotifier(host="127.0.0.1", port=controller.port)
    outcome = notifier.run(make_delivery("mailto:nobody@example.org"))
    assert outcome.status == "dead" and "550" in outcome.error
    assert handler.messages == []


def test_email_server_down_is_retried():
    outcome = EmailNotifier(host="127.0.0.1", port=free_port(), timeout=2).run(make_delivery("mailto:a@b.org"))
    assert outcome.status == "retry"


def test_email_settings_from_environment(monkeypatch):
    monkeypatch.setenv("ALERTS_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("ALERTS_SMTP_PORT", "2525")
    monkeypatch.setenv("ALERTS_SMTP_STARTTLS", "1")
    notifier = EmailNotifier.from_settings({"ALERTS_SMTP_FROM": "x@example.org"})
    assert (notifier.host, notifier.port, notifier.starttls, notifier.sender) == \
        ("mail.example.org", 2525, True, "x@example.org")
    monkeypatch.delenv("ALERTS_SMTP_HOST")
    with pytest.raises(ConfigError, match="ALERTS_SMTP_HOST"):
        EmailNotifier.from_settings({})


# -- Apprise --------------------------------------------------------------------------

def test_apprise_json_url_really_sends_escaped_markdown():
    server = WebhookReceiver().start()
    try:
        delivery = make_delivery(f"json://127.0.0.1:{server.port}/hook")
        outcome = AppriseNotifier(timeout=5).run(delivery)
        assert outcome.status == "sent", outcome.error
        [request] = server.requests
        body = request["json"]
        assert "korea" in body["title"]
        message = body["message"]
        assert delivery.id in message
        assert "\\<script\\>" in message and "<script>" not in message
        assert "\\[news\\]\\(javascript:x\\)" in message
        assert "**Kim Jong-un**" in message and "\x1b" not in message
    finally:
        server.stop()


def test_apprise_failure_is_retried():
    outcome = AppriseNotifier(timeout=2).run(make_delivery(f"json://127.0.0.1:{free_port()}/"))
    assert outcome.status == "retry" and "Apprise" in outcome.error


# -- JSONL ----------------------------------------------------------------------------

@pytest.mark.parametrize("as_url", [True, False])
def test_jsonl_appends_one_line_per_alert(tmp_path, as_url):
    path = tmp_path / "out" / "alerts.jsonl"
    target = f"file://{path}" if as_url else str(path)
    notifier = JsonlNotifier()
    first, second = make_delivery(target), make_delivery(target, kind="digest", n=2)
    assert notifier.run(first).status == "sent" and notifier.run(second).status == "sent"
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [line["id"] for line in lines] == [first.id, second.id]
    assert lines[1]["count"] == 2 and lines[0]["alerts"][0]["title"] == HOSTILE_TITLE


def test_jsonl_unwritable_path_is_retried(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    outcome = JsonlNotifier().run(make_delivery(str(blocker / "alerts.jsonl")))
    assert outcome.status == "retry"


# -- registry and base ----------------------------------------------------------------

def test_registry_picks_notifier_by_scheme(tmp_path):
    registry = NotifierRegistry({"ALERTS_SMTP_HOST": "127.0.0.1"})
    assert isinstance(registry.for_target("https://hooks.example.org/x"), WebhookNotifier)
    assert isinstance(registry.for_target("http://127.0.0.1:9/x"), WebhookNotifier)
    assert isinstance(registry.for_target("mailto:a@example.org"), EmailNotifier)
    assert isinstance(registry.for_target(f"file://{tmp_path}/a.jsonl"), JsonlNotifier)
    assert isinstance(registry.for_target("alerts/out.jsonl"), JsonlNotifier)
    for url in ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "ntfy://newswatch-topic",
                "json://127.0.0.1:8080/", "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"):
        assert isinstance(registry.for_target(url), AppriseNotifier), url
    assert registry.for_target("https://a.org/") is registry.for_target("https://b.org/")


@pytest.mark.parametrize("target, message", [
    ("gopher://old.example.org/", "gopher"),
    ("nothing-here", "nothing-here"),
    ("", "expected a URL"),
])
def test_registry_unknown_scheme_names_the_target(target, message):
    with pytest.raises(ConfigError, match=message):
        NotifierRegistry().for_target(target)


def test_registry_email_needs_smtp_host(monkeypatch):
    monkeypatch.delenv("ALERTS_SMTP_HOST", raising=False)
    with pytest.raises(ConfigError, match="ALERTS_SMTP_HOST"):
        NotifierRegistry({}).for_target("mailto:a@example.org")


@pytest.mark.parametrize("target", ["mailto:not-an-address", "mailto:", "https:///no-host", "file://remote/x.jsonl"])
def test_check_target_rejects_malformed(target):
    with pytest.raises(ConfigError):
        check_target(target)


def test_describe_target_hides_credentials():
    assert "pw" not in describe_target("https://user:pw@hooks.example.org/secret-token")
    assert "secret-token" not in describe_target("https://user:pw@hooks.example.org/secret-token")
    assert "TIiajk" not in describe_target("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")


class _Exploding(BaseNotifier):
    name = "exploding"

    def __init__(self, exc):
        self.exc = exc

    def send(self, delivery):
        raise self.exc


@pytest.mark.parametrize("exc, status", [(ValueError("bug"), "retry"), (DeliveryError("down"), "retry"),
                                         (ConfigError("bad"), "dead")])
def test_run_never_raises(exc, status):
    outcome = _Exploding(exc).run(make_delivery("https://x.org/"))
    assert outcome.status == status and type(exc).__name__ in outcome.error


def test_webhook_default_secret_signs_alerts_without_one(receiver):
    notifier = WebhookNotifier.from_settings({"ALERTS_WEBHOOK_SECRET": "s3cret"})
    assert notifier.run(make_delivery(receiver.url, secret=None)).status == "sent"
    request = receiver.requests[0]
    assert request["headers"][SIGNATURE_HEADER] == sign_body("s3cret", request["body"])


def test_long_digest_lists_fifty_stories_and_counts_the_rest():
    from crawler.alerts.render import render_html, render_text

    delivery = make_delivery("https://x.org/", kind="digest", n=60)
    text, markdown, html = render_text(delivery), render_markdown(delivery), render_html(delivery)
    for rendered in (text, markdown, html):
        assert "Story 49" in rendered and "Story 50" not in rendered and "and 10 more stories" in rendered
    assert "digest, 60 stories" in text


def test_scraped_escape_sequences_never_reach_the_log(receiver, caplog):
    receiver.respond(500, body=b"\x1b]0;owned\x07\x1b[2Jfake\nERROR forged record")
    with caplog.at_level("DEBUG"):
        outcome = WebhookNotifier().run(make_delivery(receiver.url, secret="s3cret"))
    assert outcome.status == "retry"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "fake ERROR forged record" in logged
    assert "\x1b" not in logged and "\x07" not in logged and "fake\nERROR" not in logged
