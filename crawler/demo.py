"""``make demo``: the daemon at work within a minute, on loopback, nothing to configure.

    python -m crawler.demo [--duration 60] [--interval 4] [--db data/demo.db]

Starts a demo newsroom (:class:`crawler.newsroom.Newsroom`) on 127.0.0.1 that publishes a
generated story every few seconds (about one in three is about the G7 and matches the
demo subscription), writes a temporary schedules directory (the newsroom's feed polled
every 2 s; a subscription ``g7`` whose alerts go to a JSONL file and to a webhook on the
newsroom), runs ``newswatch run`` against ``data/demo.db`` and prints each alert as it
arrives. Stops by itself after ``--duration`` seconds, or on Ctrl-C; either way the
daemon gets a SIGTERM and shuts down cleanly.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from crawler.alerts.render import clean_line

PLACES = ["Berlin", "Nairobi", "Lima", "Osaka", "Lyon", "Toronto", "Jakarta", "Porto", "Accra", "Hanoi", "Quito",
          "Tbilisi", "Dakar", "Perth", "Bergen", "Cusco", "Tunis", "Mumbai", "Krakow", "Bogota"]
SUBJECTS = ["the city council", "regional officials", "a group of engineers", "local farmers", "the port authority",
            "hospital staff", "teachers' unions", "the transport ministry", "researchers", "small businesses",
            "the coast guard", "volunteer firefighters", "the central bank", "water engineers", "fishing crews"]
ACTIONS = ["approved a plan to rebuild", "warned about delays to", "opened an inquiry into", "celebrated the reopening of",
           "asked for more money for", "voted to expand", "published a report on", "raised concerns over",
           "announced new rules for", "tested a prototype of"]
THINGS = ["the northern bridge", "a solar farm", "the old tram line", "flood barriers", "the river harbour",
          "a new library", "the wind park", "school canteens", "the night train", "cycling lanes", "a vaccine centre",
          "the recycling plant", "mountain roads", "a desalination unit", "the public archive"]
DETAILS = ["Work is expected to take about {n} months.", "The budget is put at {n} million.",
           "Some {n} residents attended the first meeting.", "A decision is due within {n} weeks.",
           "Critics said the plan had been delayed {n} times.", "Officials said {n} jobs could be created.",
           "The last comparable project ended {n} years ago.", "About {n} percent of households are affected."]
G7_LINES = ["G7 finance ministers met on {day} to discuss the tariff dispute and its effect on {place}.",
            "Delegates said the G7 finance ministers would publish a joint statement on tariffs.",
            "The tariff dispute dominated talks among G7 finance ministers, officials in {place} said."]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def make_article_page(title: str, paragraphs: list[str], published: datetime, site: str = "Demo Gazette",
                      author: str = "Demo Desk") -> str:
    """A news article page in the usual template (header, nav, byline, body, related links, footer)."""
    stamp = published.isoformat()
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    esc = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} | {esc(site)}</title>
<meta property="og:type" content="article"><meta property="og:title" content="{esc(title)}">
<meta property="og:site_name" content="{esc(site)}">
<meta property="article:published_time" content="{stamp}">
<script type="application/ld+json">{json.dumps({"@context": "https://schema.org", "@type": "NewsArticle",
                                                "headline": title, "datePublished": stamp,
                                                "author": [{"@type": "Person", "name": author}]})}</script>
</head><body>
<header class="site-header"><div class="logo">{esc(site)}</div>
<nav class="nav"><a href="/">Home</a> <a href="/world/">World</a> <a href="/business/">Business</a></nav></header>
<main><article class="story">
<h1 class="headline">{esc(title)}</h1>
<div class="byline">By <a href="/authors/desk" rel="author">{esc(author)}</a> · <time datetime="{stamp}">{published:%B %d, %Y}</time></div>
<div class="story-body">
{body}
</div></article>
<section class="related"><h2>More stories</h2><ul><li><a href="/world/a">Markets close higher</a></li>
<li><a href="/world/b">Storm warning issued for the coast</a></li></ul></section></main>
<footer><p>© {esc(site)}. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""


def generate_story(rng: random.Random, number: int, g7: bool = False) -> tuple[str, str, list[str]]:
    """(path, title, paragraphs) of a plausible, unique local-news story; ``g7`` ones mention the
    G7 finance ministers (the demo subscription's query)."""
    place = rng.choice(PLACES)
    subject, action, thing = rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(THINGS)
    if g7:
        title = f"G7 finance ministers meet in {place} as tariff dispute drags on ({number})"
    else:
        title = f"In {place}, {subject} {action} {thing} ({number})"
    paragraphs = []
    for i in range(5):
        words = [f"In {place}, {rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(THINGS)} on "
                 f"{rng.choice(DAYS)}, story {number}-{i}."]
        words += [rng.choice(DETAILS).format(n=rng.randint(2, 900)) for _ in range(3)]
        if g7 and i in (0, 2):
            words.insert(1, rng.choice(G7_LINES).format(day=rng.choice(DAYS), place=place))
        words.append(f"{rng.choice(SUBJECTS).capitalize()} in {rng.choice(PLACES)} {rng.choice(ACTIONS)} "
                     f"{rng.choice(THINGS)} last year.")
        paragraphs.append(" ".join(words))
    return f"/news/{number:05d}-{'g7' if g7 else 'local'}/", title, paragraphs


def publish_story(room, rng: random.Random, number: int, g7: bool = False, feeds=("main",)):
    path, title, paragraphs = generate_story(rng, number, g7)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    page = make_article_page(title, paragraphs, now)
    return room.publish(path, page, title, published=now, feeds=feeds)


def write_schedules(directory: Path, room, alerts_file: Path, poll: str = "2s") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "demo.toml").write_text(f"""\
# Written by `python -m crawler.demo`: one source, one subscription.
[[source]]
name = "demo-gazette"
url = "{room.url('/feeds/main.rss')}"
every = "{poll}"

[[subscription]]
name = "g7"
query = '"finance ministers" AND (tariff* OR G7)'
notify = ["{alerts_file.resolve().as_uri()}", "{room.url('/hooks/demo')}"]

[health]
notify = ["{alerts_file.resolve().as_uri()}"]
failures = 3
""", "utf-8")
    return directory


def main(argv: list[str] | None = None) -> int:
    from crawler.newsroom import Newsroom

    parser = argparse.ArgumentParser(prog="python -m crawler.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds before stopping (default 60)")
    parser.add_argument("--interval", type=float, default=4, help="seconds between published stories (default 4)")
    parser.add_argument("--db", default="data/demo.db", help="SQLite file (default data/demo.db, reset each time)")
    parser.add_argument("--keep-db", action="store_true", help="keep the demo database of an earlier run")
    args = parser.parse_args(argv)

    db_path = Path(args.db)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if not args.keep_db:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
    rng = random.Random(7)
    room = Newsroom(name="Demo Gazette").start()
    number = 0
    for _ in range(3):  # a few stories already online: the first run stores them quietly
        number += 1
        publish_story(room, rng, number)
    work = Path(tempfile.mkdtemp(prefix="newswatch-demo-"))
    alerts_file = work / "alerts.jsonl"
    schedules = write_schedules(work / "schedules", room, alerts_file)
    log_path = work / "daemon.log"
    print(f"Demo newsroom on {room.base_url}, publishing a story every {args.interval:g}s "
          f"(about one in three matches the subscription g7).")
    print(f"Schedules in {schedules}; database {db_path}; daemon log {log_path}")
    print(f"Running: newswatch run --schedules {schedules} --db {db_path}  (stops after {args.duration:g}s, "
          f"or press Ctrl-C)\n")
    log = open(log_path, "w", encoding="utf-8")
    daemon = subprocess.Popen([sys.executable, "-m", "crawler.cli", "run", "--schedules", str(schedules),
                               "--db", f"sqlite:///{db_path.resolve()}"], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    published: dict[str, float] = {}
    seen = 0
    start = time.monotonic()
    next_story = start + 2
    code = 0
    try:
        while time.monotonic() - start < args.duration:
            if daemon.poll() is not None:
                print(f"The daemon exited early ({daemon.returncode}); see {log_path}")
                code = 1
                break
            if time.monotonic() >= next_story:
                number += 1
                g7 = number % 3 == 0
                story = publish_story(room, rng, number, g7=g7)
                published[story.path] = time.monotonic()
                mark = "  <- matches g7" if g7 else ""
                print(f"[{time.monotonic() - start:5.1f}s] published: {story.title}{mark}")
                next_story += args.interval
            lines = alerts_file.read_text("utf-8").splitlines() if alerts_file.exists() else []
            for line in lines[seen:]:
                seen += 1
                _print_alert(json.loads(line), published, start)
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nCtrl-C: stopping")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        log.close()
        lines = alerts_file.read_text("utf-8").splitlines() if alerts_file.exists() else []
        for line in lines[seen:]:
            _print_alert(json.loads(line), published, start)
        hooks = len([h for h in room.hooks if h["path"] == "/hooks/demo"])
        room.stop()
    print(f"\nDaemon exited with {daemon.returncode}. {len(lines)} alert(s) in {alerts_file}, "
          f"{hooks} webhook POST(s) received by the newsroom.")
    print(f"Look around: newswatch status --db sqlite:///{db_path.resolve()} --schedules {schedules}")
    return code or (0 if daemon.returncode == 0 else 1)


def _print_alert(message: dict, published: dict[str, float], start: float) -> None:
    for item in message.get("alerts") or [message]:
        now = time.monotonic()
        if item.get("kind") == "health":
            print(f"[{now - start:5.1f}s] HEALTH: {clean_line(item.get('title'), 200)}")
            continue
        url = item.get("url") or ""
        path = "/" + url.split("/", 3)[-1] if url.count("/") >= 3 else url
        latency = f" ({now - published[path]:.1f}s after publication)" if path in published else ""
        print(f"[{now - start:5.1f}s] ALERT {message.get('subscription') or item.get('subscription')}: "
              f"{clean_line(item.get('title'), 160)}{latency}")
        if item.get("snippet"):
            print(f"         {clean_line(item['snippet'], 160)}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
