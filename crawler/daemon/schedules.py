"""Reading ``schedules/*.toml``: the sources the daemon crawls, the subscriptions it
syncs into the database, and where source-health notices go.

A file may hold::

    [defaults]                       # for every [[source]] of this file
    every = "15m"
    jitter = "30s"

    [[source]]
    name = "actu-monde"              # unique across all files
    url = "https://www.actu-monde.example/feed/"
    every = "15m"                    # "90s", "2s", "1h30m", "1d", or a number of seconds
    # cron = "*/15 6-23 * * mon-fri" # instead of every; days of the week by name
    # timezone = "Europe/Paris"      # for cron (default UTC)
    jitter = "1m"                    # random delay added to each run (0..jitter)
    user_agent = "newswatch (+https://example.org/bot)"
    download_delay = "1s"            # Scrapy DOWNLOAD_DELAY
    concurrency = 2                  # Scrapy CONCURRENT_REQUESTS_PER_DOMAIN
    adaptive = { floor = "1m", ceiling = "6h" }
    enabled = true

    [[subscription]]
    name = "korea"
    query = '"Kim Jong Un" AND (Russia OR Putin)'
    notify = ["https://hooks.example/korea", "mailto:alerts@example.org"]
    mode = "instant"                 # or hourly, daily, weekly (+ digest_at, digest_day, timezone)

    [health]                         # at most one file may declare it
    notify = ["mailto:ops@example.org"]
    failures = 3                     # failed runs in a row before a source is 'failing'
    silence_factor = 10              # silent for 10x its usual gap between articles ...
    silence_min = "6h"               # ... and at least this long: 'silent'

:func:`load_schedules` refuses a bad file with :class:`ConfigError` naming the file,
the line, the key and what was expected.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crawler.exceptions import ConfigError, QueryError

logger = logging.getLogger(__name__)

SOURCE_KEYS = ("name", "url", "every", "cron", "timezone", "jitter", "user_agent", "download_delay",
               "concurrency", "adaptive", "enabled")
DEFAULT_KEYS = tuple(k for k in SOURCE_KEYS if k not in ("name", "url"))
ADAPTIVE_KEYS = ("floor", "ceiling")
SUBSCRIPTION_KEYS = ("name", "query", "notify", "mode", "digest_at", "digest_day", "timezone", "languages",
                     "sources", "secret", "paused", "alert_revisions")
HEALTH_KEYS = ("notify", "failures", "silence_factor", "silence_min")
TOP_KEYS = ("defaults", "source", "subscription", "health")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.I)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value) -> float:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, ``"250ms"`` or a number of seconds -> seconds.

    Raises ValueError with what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a duration such as "30s", "15m", "1h", got {value!r}')
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a positive duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _DURATION_PART.sub("", text) == "":
            return sum(float(n) * _UNITS[u.lower()] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f'expected a duration such as "30s", "15m", "1h30m" or a number of seconds, got {value!r}')


def format_duration(seconds: float | None) -> str:
    """Seconds as the shortest of ``"2s"``, ``"15m"``, ``"1h30m"``, ``"2d"``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds == int(seconds) or seconds >= 10 else f"{seconds:.1f}s"
    parts, rest = [], int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts[:2])


def check_zone(name) -> ZoneInfo:
    if not isinstance(name, str):
        raise ValueError(f"expected an IANA time zone name such as \"Europe/Paris\", got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as \"Europe/Paris\")") from None


def make_cron_trigger(expression, timezone: str = "UTC"):
    """An APScheduler ``CronTrigger`` for a 5-field crontab line; ValueError saying what is wrong.

    Days of the week must be names (``mon-fri``): crontab counts 0 as Sunday, APScheduler
    as Monday, so a number would silently run on the wrong day.
    """
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(expression, str):
        raise ValueError(f'expected a crontab line such as "*/15 6-23 * * mon-fri", got {expression!r}')
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f'expected 5 fields "minute hour day month day-of-week" (e.g. "*/15 6-23 * * mon-fri"), '
                         f"got {len(fields)} in {expression!r}")
    dow = fields[4]
    if re.search(r"(^|[,-])\d", dow):
        raise ValueError(f"day-of-week {dow!r}: use names (mon, tue, ... sun, e.g. mon-fri), not numbers")
    try:
        return CronTrigger.from_crontab(expression, timezone=check_zone(timezone))
    except ValueError as exc:
        raise ValueError(f"bad cron expression {expression!r}: {exc}") from None


@dataclass
class SourceSchedule:
    """One ``[[source]]``: what to crawl, when, and how politely."""

    name: str
    url: str
    file: str
    line: int
    every: float | None = None  # seconds; None with cron
    cron: str | None = None
    timezone: str = "UTC"
    jitter: float = 0.0
    user_agent: str | None = None
    download_delay: float | None = None
    concurrency: int | None = None
    adaptive: tuple[float, float] | None = None  # (floor, ceiling) seconds
    enabled: bool = True

    def trigger_key(self) -> tuple:
        """What decides when it runs (a change means a new trigger)."""
        return (self.every, self.cron, self.timezone, self.jitter, self.adaptive)

    def settings_overrides(self) -> dict:
        """Per-source Scrapy settings for this source's crawls."""
        overrides: dict = {}
        if self.user_agent:
            overrides["USER_AGENT"] = self.user_agent
        if self.download_delay is not None:
            overrides["DOWNLOAD_DELAY"] = self.download_delay
        if self.concurrency is not None:
            overrides["CONCURRENT_REQUESTS_PER_DOMAIN"] = self.concurrency
        return overrides

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        text = f"every {format_duration(self.every)}"
        if self.adaptive:
            text += f" (adaptive {format_duration(self.adaptive[0])}..{format_duration(self.adaptive[1])})"
        return text


@dataclass
class HealthConfig:
    """``[health]``: who hears about failing or silent sources, and when a source counts as such."""

    notify: list[str] | None = None  # None: every subscription's targets
    failures: int = 3
    silence_factor: float = 10.0
    silence_min: float = 6 * 3600.0
    file: str | None = None


@dataclass
class Schedules:
    """Everything the ``schedules/*.toml`` files of one directory declare."""

    directory: Path
    sources: list[SourceSchedule] = field(default_factory=list)
    subscriptions: list[dict] = field(default_factory=list)
    health: HealthConfig = field(default_factory=HealthConfig)
    files: list[str] = field(default_factory=list)

    def source(self, name: str) -> SourceSchedule | None:
        return next((s for s in self.sources if s.name == name), None)


# -- locating keys in the text ------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")


def _sections(text: str) -> list[tuple[str, bool, int]]:
    """(table name, is array-of-tables, 1-based line) of each header, in order."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _HEADER.match(line)
        if match:
            found.append((match.group(1).strip().strip("\"'"), line.lstrip().startswith("[["), number))
    return found


def locate(text: str, table: str | None, index: int | None, key: str | None) -> int:
    """The line of ``key`` in the ``index``-th ``[[table]]`` (or ``[table]``; None: top level).

    Falls back to the table's header line, then to line 1.
    """
    lines = text.splitlines()
    sections = _sections(text)
    start, end = 0, len(lines)
    if table is not None:
        matching = [s for s in sections if s[0] == table]
        if index is not None:
            matching = [s for s in matching if s[1]]
        pick = matching[index or 0] if len(matching) > (index or 0) else None
        if pick is None:
            return 1
        start = pick[2]  # the line after the header (0-based index == header's 1-based number)
        later = [s[2] for s in sections if s[2] > pick[2]]
        end = (later[0] - 1) if later else len(lines)
        header_line = pick[2]
    else:
        first = sections[0][2] if sections else len(lines) + 1
        end = first - 1
        header_line = 1
    if key:
        pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return header_line


# -- loading ----------------------------------------------------------------------------

class _FileReader:
    """Validates one file; every error names file:line, the entry, the key and what was expected."""

    def __init__(self, path: Path, display: str):
        self.path = path
        self.display = display
        self.text = ""

    def fail(self, table, index, key, what: str, entry: str = "") -> ConfigError:
        line = locate(self.text, table, index, key)
        where = f"{self.display}:{line}: "
        if entry:
            where += f"{entry}: "
        if key:
            where += f"{key}: "
        return ConfigError(where + what)

    def read(self) -> dict:
        try:
            self.text = self.path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.display}: cannot read: {exc}") from exc
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\(at line (\d+), column (\d+)\)", message)
            if match:
                bare = message[:match.start()].strip()
                raise ConfigError(f"{self.display}:{match.group(1)}:{match.group(2)}: invalid TOML: {bare}") from None
            raise ConfigError(f"{self.display}: invalid TOML: {message}") from None

    def unknown_keys(self, table, index, entry: str, values: dict, allowed) -> None:
        for key in values:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(table, index, key, f"unknown key{hint}; expected one of: {', '.join(allowed)}",
                                entry)

    def duration(self, table, index, entry, values: dict, key: str, positive: bool = True) -> float | None:
        if key not in values:
            return None
        try:
            seconds = parse_duration(values[key])
        except ValueError as exc:
            raise self.fail(table, index, key, str(exc), entry) from None
        if positive and seconds <= 0:
            raise self.fail(table, index, key, f"expected a duration above zero, got {values[key]!r}", entry)
        return seconds


def _load_file(path: Path, display: str, result: Schedules, seen_names: dict, seen_urls: dict) -> None:
    reader = _FileReader(path, display)
    data = reader.read()
    for key, value in data.items():
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(key, TOP_KEYS, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            line = locate(reader.text, key, None, None)
            if line == 1:
                line = locate(reader.text, None, None, key)
            raise ConfigError(f"{display}:{line}: {key}: unknown table{hint}; expected [defaults], [[source]], "
                              f"[[subscription]] or [health]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise reader.fail(None, None, "defaults", "expected a table [defaults]")
    reader.unknown_keys("defaults", None, "[defaults]", defaults, DEFAULT_KEYS)

    sources = data.get("source", [])
    if not isinstance(sources, list):
        raise reader.fail("source", None, None, "expected [[source]] entries (double brackets)")
    for index, entry in enumerate(sources):
        source = _read_source(reader, index, entry, defaults)
        if source.name in seen_names:
            raise reader.fail("source", index, "name",
                              f"duplicate source name {source.name!r} (also in {seen_names[source.name]})",
                              f"source {source.name!r}")
        if source.url in seen_urls:
            raise reader.fail("source", index, "url",
                              f"this URL is already the source {seen_urls[source.url][0]!r} "
                              f"({seen_urls[source.url][1]})", f"source {source.name!r}")
        seen_names[source.name] = f"{display}:{source.line}"
        seen_urls[source.url] = (source.name, f"{display}:{source.line}")
        result.sources.append(source)

    subscriptions = data.get("subscription", [])
    if not isinstance(subscriptions, list):
        raise reader.fail("subscription", None, None, "expected [[subscription]] entries (double brackets)")
    for index, entry in enumerate(subscriptions):
        result.subscriptions.append(_read_subscription(reader, index, entry))

    if "health" in data:
        if result.health.file:
            raise reader.fail("health", None, None, f"[health] is declared already in {result.health.file}")
        result.health = _read_health(reader, data["health"])


def _read_source(reader: _FileReader, index: int, entry: dict, defaults: dict) -> SourceSchedule:
    line = locate(reader.text, "source", index, None)
    name = entry.get("name")
    label = f"source {name!r}" if isinstance(name, str) and name else f"source #{index + 1}"
    reader.unknown_keys("source", index, label, entry, SOURCE_KEYS)
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or any(c in name for c in ",\n\r\t"):
        raise reader.fail("source", index, "name", "expected a name: 1-200 characters, no commas or line breaks",
                          label)
    url = entry.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url.strip()):
        raise reader.fail("source", index, "url", f"expected an http(s) URL of a feed, sitemap or page, got {url!r}",
                          label)
    merged = {**defaults, **entry}
    # A source's own `every` or `cron` replaces the other one from [defaults].
    if "cron" in entry and "every" not in entry:
        merged.pop("every", None)
    if "every" in entry and "cron" not in entry:
        merged.pop("cron", None)

    def where(key):  # the line of the key in the source, else in [defaults]
        return ("source", index) if key in entry else ("defaults", None)

    source = SourceSchedule(name=name.strip(), url=url.strip(), file=reader.display, line=line)
    if "every" in merged and "cron" in merged:
        raise reader.fail("source", index, "cron", "give either every or cron, not both", label)
    if "every" in merged:
        table, idx = where("every")
        source.every = reader.duration(table, idx, label, merged, "every")
    if "cron" in merged:
        table, idx = where("cron")
        source.cron = merged["cron"]
    if "timezone" in merged:
        table, idx = where("timezone")
        try:
            check_zone(merged["timezone"])
        except ValueError as exc:
            raise reader.fail(table, idx, "timezone", str(exc), label) from None
        source.timezone = merged["timezone"]
    if source.cron is not None:
        table, idx = where("cron")
        try:
            make_cron_trigger(source.cron, source.timezone)
        except ValueError as exc:
            raise reader.fail(table, idx, "cron", str(exc), label) from None
    if "jitter" in merged:
        table, idx = where("jitter")
        source.jitter = reader.duration(table, idx, label, merged, "jitter", positive=False) or 0.0
    if "user_agent" in merged:
        table, idx = where("user_agent")
        value = merged["user_agent"]
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise reader.fail(table, idx, "user_agent", "expected a one-line string", label)
        source.user_agent = value.strip()
    if "download_delay" in merged:
        table, idx = where("download_delay")
        source.download_delay = reader.duration(table, idx, label, merged, "download_delay", positive=False)
    if "concurrency" in merged:
        table, idx = where("concurrency")
        value = merged["concurrency"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            raise reader.fail(table, idx, "concurrency", f"expected a whole number from 1 to 64, got {value!r}",
                              label)
        source.concurrency = value
    if "enabled" in merged:
        table, idx = where("enabled")
        if not isinstance(merged["enabled"], bool):
            raise reader.fail(table, idx, "enabled", f"expected true or false, got {merged['enabled']!r}", label)
        source.enabled = merged["enabled"]
    if "adaptive" in merged and merged["adaptive"] is not False:
        table, idx = where("adaptive")
        source.adaptive = _read_adaptive(reader, table, idx, label, merged["adaptive"], source)
    if source.every is None and source.cron is None:
        if source.adaptive:
            source.every = source.adaptive[0]
        else:
            raise reader.fail("source", index, None, 'expected a schedule: every = "15m" or cron = "*/15 * * * *"',
                              label)
    if source.adaptive:
        source.every = min(max(source.every, source.adaptive[0]), source.adaptive[1])
    return source


def _read_adaptive(reader, table, idx, label, value, source: SourceSchedule) -> tuple[float, float]:
    if source.cron is not None:
        raise reader.fail(table, idx, "adaptive", "adaptive polling needs every, not cron", label)
    every = source.every
    if value is True:
        if every is None:
            raise reader.fail(table, idx, "adaptive", "adaptive = true needs every (or give floor and ceiling)",
                              label)
        return every / 4, every * 24
    if not isinstance(value, dict):
        raise reader.fail(table, idx, "adaptive", f'expected true or {{ floor = "1m", ceiling = "6h" }}, got {value!r}',
                          label)
    for key in value:
        if key not in ADAPTIVE_KEYS:
            raise reader.fail(table, idx, "adaptive", f"unknown key {key!r}; expected floor and ceiling", label)
    bounds = []
    for key, fallback in (("floor", every / 4 if every else None), ("ceiling", every * 24 if every else None)):
        if key in value:
            try:
                seconds = parse_duration(value[key])
            except ValueError as exc:
                raise reader.fail(table, idx, "adaptive", f"{key}: {exc}", label) from None
            if seconds <= 0:
                raise reader.fail(table, idx, "adaptive", f"{key}: expected a duration above zero", label)
        elif fallback is not None:
            seconds = fallback
        else:
            raise reader.fail(table, idx, "adaptive", f"expected {key} (or every)", label)
        bounds.append(seconds)
    if bounds[0] > bounds[1]:
        raise reader.fail(table, idx, "adaptive", "floor must not be above ceiling", label)
    return bounds[0], bounds[1]


def _read_subscription(reader: _FileReader, index: int, entry: dict) -> dict:
    from crawler.alerts.subscriptions import validate_subscription

    name = entry.get("name")
    label = f"subscription {name!r}" if isinstance(name, str) and name else f"subscription #{index + 1}"
    reader.unknown_keys("subscription", index, label, entry, SUBSCRIPTION_KEYS)
    if "notify" not in entry:
        raise reader.fail("subscription", index, None, 'expected notify = ["https://…", "mailto:…", …]', label)
    for key in ("paused", "alert_revisions"):
        if key in entry and not isinstance(entry[key], bool):
            raise reader.fail("subscription", index, key, f"expected true or false, got {entry[key]!r}", label)
    values = {key: value for key, value in entry.items() if key != "notify"}
    values["targets"] = entry["notify"]
    marker = "\x00"
    try:
        validated = validate_subscription(values, where=marker)
    except QueryError as exc:
        raise reader.fail("subscription", index, "query", str(exc), label) from None
    except ConfigError as exc:
        message = str(exc)
        if message.startswith(marker):
            message = message[len(marker):]
        field, sep, rest = message.partition(":")
        if sep and field in SUBSCRIPTION_KEYS + ("targets",):
            key = "notify" if field == "targets" else field
            raise reader.fail("subscription", index, key, rest.strip(), label) from None
        raise reader.fail("subscription", index, None, message, label) from None
    validated["file"] = reader.display
    validated["line"] = locate(reader.text, "subscription", index, None)
    if "paused" in entry:
        validated["paused"] = entry["paused"]
    return validated


def _read_health(reader: _FileReader, data) -> HealthConfig:
    if not isinstance(data, dict):
        raise reader.fail(None, None, "health", "expected a table [health]")
    reader.unknown_keys("health", None, "[health]", data, HEALTH_KEYS)
    health = HealthConfig(file=reader.display)
    if "notify" in data:
        from crawler.alerts.notifiers import check_target

        targets = data["notify"]
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise reader.fail("health", None, "notify", "expected a list of targets", "[health]")
        for target in targets:
            try:
                check_target(target)
            except ConfigError as exc:
                raise reader.fail("health", None, "notify", str(exc), "[health]") from None
        health.notify = list(dict.fromkeys(targets))
    if "failures" in data:
        value = data["failures"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise reader.fail("health", None, "failures", f"expected a whole number above zero, got {value!r}",
                              "[health]")
        health.failures = value
    if "silence_factor" in data:
        value = data["silence_factor"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 1:
            raise reader.fail("health", None, "silence_factor", f"expected a number above 1, got {value!r}",
                              "[health]")
        health.silence_factor = float(value)
    if "silence_min" in data:
        health.silence_min = reader.duration("health", None, "[health]", data, "silence_min")
    return health


def load_schedules(directory: str | Path) -> Schedules:
    """Read and validate every ``*.toml`` of ``directory`` (sorted by name).

    Raises ConfigError (``file:line: entry: key: what was expected``) on the first problem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such schedules directory (give --schedules DIR)")
    result = Schedules(directory=directory)
    seen_names: dict[str, str] = {}
    seen_urls: dict[str, tuple[str, str]] = {}
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise ConfigError(f"{directory}: no *.toml schedule files")
    for path in paths:
        display = str(path)
        _load_file(path, display, result, seen_names, seen_urls)
        result.files.append(display)
    names: dict[str, str] = {}
    for sub in result.subscriptions:
        if sub["name"] in names:
            raise ConfigError(f"{sub['file']}:{sub['line']}: subscription {sub['name']!r}: name: declared twice "
                              f"(also in {names[sub['name']]})")
        names[sub["name"]] = f"{sub['file']}:{sub['line']}"
    return result
