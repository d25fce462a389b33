"""Schedule files: what they accept, and bad ones refused with file, line, key and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crawler.daemon.schedules import format_duration, load_schedules, parse_duration
from crawler.exceptions import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text,seconds", [
    ("2s", 2), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("1d", 86400), ("250ms", 0.25), (" 90 s ", 90),
    (30, 30), (1.5, 1.5), ("0.5s", 0.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["15 minutes", "m", "", "-5s", -3, True, "1x", "15"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="expected"):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(s) for s in (2, 900, 5400, 86400, 0.25)] == ["2s", "15m", "1h30m", "1d", "250ms"]


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), "utf-8")
    return path


def test_example_file_is_valid():
    schedules = load_schedules(ROOT / "schedules")
    names = [s.name for s in schedules.sources]
    assert names == ["actu-monde", "le-quotidien", "wire-service", "old-blog"]
    actu, quotidien, wire, old = schedules.sources
    assert actu.every == 600 and actu.jitter == 30  # own every, jitter from [defaults]
    assert quotidien.cron == "*/15 6-23 * * mon-fri" and quotidien.every is None
    assert quotidien.timezone == "Europe/Paris"
    assert quotidien.settings_overrides() == {"USER_AGENT": "newswatch (+https://example.org/bot; ops@example.org)",
                                              "DOWNLOAD_DELAY": 2.0, "CONCURRENT_REQUESTS_PER_DOMAIN": 1}
    assert wire.adaptive == (60, 6 * 3600) and wire.every == 300
    assert old.enabled is False
    assert [s["name"] for s in schedules.subscriptions] == ["korea", "wildfires-digest"]
    korea = schedules.subscriptions[0]
    assert korea["targets"] == ["https://hooks.example/korea", "mailto:alerts@example.org"]
    assert schedules.health.notify == ["mailto:ops@example.org"] and schedules.health.failures == 3
    assert schedules.health.silence_min == 6 * 3600


GOOD_SOURCE = """
[[source]]
name = "ok"
url = "http://127.0.0.1/feed"
every = "1m"
"""

# (file text, expected line, expected fragments of the message)
BAD_FILES = [
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     evry = "15m"
     """, 4, ["source 'a'", "evry", "unknown key", "did you mean 'every'"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     every = "15 minutes"
     """, 4, ["source 'a'", "every", "expected a duration"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     cron = "*/15 6-23 * * 1-5"
     """, 4, ["cron", "use names"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     cron = "*/15 25 * * *"
     """, 4, ["cron", "bad cron expression"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     cron = "0 8 * * *"
     timezone = "Europe/Pariss"
     """, 5, ["timezone", "unknown time zone 'Europe/Pariss'"]),
    ("""
     [[source]]
     name = "a"
     url = "ftp://example.org/feed"
     every = "1m"
     """, 3, ["url", "expected an http(s) URL"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     """, 1, ["source 'a'", "expected a schedule"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     cron = "0 8 * * mon"
     adaptive = { floor = "1m", ceiling = "1h" }
     """, 5, ["adaptive", "needs every"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     every = "5m"
     adaptive = { floor = "2h", ceiling = "1h" }
     """, 5, ["adaptive", "floor must not be above ceiling"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     every = "1m"
     concurrency = 0
     """, 5, ["concurrency", "1 to 64"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     every = "1m"

     [[source]]
     name = "a"
     url = "http://127.0.0.1/other"
     every = "1m"
     """, 7, ["duplicate source name 'a'"]),
    (GOOD_SOURCE + """
     [[subscription]]
     name = "korea"
     query = '"Kim Jong Un" AND (Russia OR'
     notify = ["http://127.0.0.1/hooks/korea"]
     """, 8, ["subscription 'korea'", "query", "position"]),
    (GOOD_SOURCE + """
     [[subscription]]
     name = "korea"
     query = 'korea'
     notify = ["gopher://x"]
     """, 9, ["subscription 'korea'", "notify", "gopher"]),
    (GOOD_SOURCE + """
     [[subscription]]
     name = "korea"
     query = 'korea'
     notify = ["http://127.0.0.1/hooks/korea"]
     mode = "daily"
     digest_at = "25:00"
     """, 11, ["digest_at", "HH:MM"]),
    (GOOD_SOURCE + """
     [[subscription]]
     name = "korea"
     query = 'korea'
     """, 6, ["subscription 'korea'", "expected notify"]),
    ("""
     [defaults]
     every = "soon"

     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     """, 2, ["every", "expected a duration"]),
    ("""
     [[source]]
     name = "a"
     url = "http://127.0.0.1/feed"
     every = 1m
     """, 4, ["invalid TOML"]),
    ("""
     [sources]
     name = "a"
     """, 1, ["unknown table", "did you mean [source]"]),
    ("""
     [health]
     failures = 0
     """, 2, ["[health]", "failures", "above zero"]),
]


@pytest.mark.parametrize("text,line,fragments", BAD_FILES)
def test_bad_file_is_refused_with_file_line_and_key(tmp_path, text, line, fragments):
    path = write(tmp_path / "schedules", "news.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_schedules(path.parent)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:"), message
    for fragment in fragments:
        assert fragment in message, message


def test_duplicate_names_across_files(tmp_path):
    directory = tmp_path / "schedules"
    write(directory, "a.toml", GOOD_SOURCE)
    write(directory, "b.toml", GOOD_SOURCE.replace("/feed", "/other"))
    with pytest.raises(ConfigError, match=r"b\.toml:\d+: source 'ok': name: duplicate source name 'ok' \(also in .*a\.toml"):
        load_schedules(directory)


def test_same_url_twice_is_refused(tmp_path):
    directory = tmp_path / "schedules"
    write(directory, "a.toml", GOOD_SOURCE + GOOD_SOURCE.replace('"ok"', '"other"'))
    with pytest.raises(ConfigError, match="url: this URL is already the source 'ok'"):
        load_schedules(directory)


def test_defaults_apply_per_file_and_source_values_win(tmp_path):
    directory = tmp_path / "schedules"
    write(directory, "a.toml", """
        [defaults]
        cron = "0 6 * * mon-fri"
        user_agent = "ua-a"

        [[source]]
        name = "a1"
        url = "http://127.0.0.1/a1"

        [[source]]
        name = "a2"
        url = "http://127.0.0.1/a2"
        every = "2s"
        """)
    write(directory, "b.toml", """
        [[source]]
        name = "b1"
        url = "http://127.0.0.1/b1"
        every = 3
        adaptive = true
        """)
    schedules = load_schedules(directory)
    a1, a2, b1 = schedules.sources
    assert a1.cron == "0 6 * * mon-fri" and a1.user_agent == "ua-a"
    assert a2.every == 2 and a2.cron is None and a2.user_agent == "ua-a"
    assert b1.every == 3 and b1.user_agent is None and b1.adaptive == (0.75, 72)


def test_no_files_and_missing_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such schedules directory"):
        load_schedules(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.toml"):
        load_schedules(tmp_path / "empty")


def test_check_command(tmp_path):
    from conftest import run_cli

    directory = tmp_path / "schedules"
    write(directory, "a.toml", GOOD_SOURCE)
    ok = run_cli("check", "--schedules", str(directory))
    assert "a.toml: ok (1 source(s), 0 subscription(s))" in ok.stdout
    write(directory, "b.toml", GOOD_SOURCE.replace('every = "1m"', 'every = "often"').replace('"ok"', '"b"'))
    bad = run_cli("check", "--schedules", str(directory), check=False)
    assert bad.returncode == 2
    assert f"{directory / 'b.toml'}:4: source 'b': every: expected a duration" in bad.stderr
