"""`newswatch crawl --processes N`: the sources split over N crawler processes sharing
one database, with the same articles stored once and one summary and output."""

from __future__ import annotations

from sqlalchemy import func, select

from conftest import NEWSROOM_DATA, load_manifest, parse_summary, read_jsonl, run_cli
from crawler.shards import SourceClaims, claim_units, share_host_politeness, split_sources, spread_hosts
from crawler.store import open_store
from crawler.store.schema import articles

ARTICLE_PATHS = {e["path"] for e in load_manifest() if e["file"] != "g7.html"}


def test_split_sources_keeps_hosts_together_and_spreads_a_host_that_has_too_many():
    urls = ["https://a.example/feed", "https://b.example/feed", "https://a.example/other",
            "https://c.example/rss", "https://d.example/rss", "https://b.example/more"]
    shards = split_sources(urls, 2)
    assert sorted(i for shard in shards for i in shard) == list(range(len(urls)))
    for host in ("a.example", "b.example"):
        assert len([s for s in shards if any(host in urls[i] for i in s)]) == 1
    assert sorted(len(s) for s in shards) == [3, 3]
    assert split_sources(urls, 2) == shards  # deterministic
    assert spread_hosts(urls, shards) == {}  # no host is shared

    one_host = [f"http://127.0.0.1:8000/feeds/{n}.rss" for n in range(5)]
    shards = split_sources(one_host, 2)
    assert sorted(len(s) for s in shards) == [2, 3]
    assert spread_hosts(one_host, shards) == {"127.0.0.1": 2}  # each process halves its concurrency there
    assert spread_hosts(one_host, split_sources(one_host, 4)) == {"127.0.0.1": 3}  # 3 processes (pieces of 2)
    assert split_sources(one_host[:1], 4) == [[0]]  # never more processes than sources


def test_a_shared_host_gets_a_share_of_its_concurrency_and_delay_and_other_hosts_keep_theirs():
    from scrapy.settings import Settings

    settings = Settings({"CONCURRENT_REQUESTS_PER_DOMAIN": 8, "DOWNLOAD_DELAY": 0.5,
                         "DOWNLOAD_SLOTS": {"slow.example": {"concurrency": 2, "delay": 3.0},
                                            "own.example": {"concurrency": 6}}})
    share_host_politeness(settings, {"big.example": 3, "slow.example": 2})
    slots = settings.getdict("DOWNLOAD_SLOTS")
    assert slots["big.example"] == {"concurrency": 2, "delay": 1.5}  # 8 // 3, 0.5 s x 3
    assert slots["slow.example"] == {"concurrency": 1, "delay": 6.0}
    assert slots["own.example"] == {"concurrency": 6}  # not shared: as configured
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 8


def test_processes_sharing_a_host_ask_no_more_of_it_at_once_than_one_process(newsroom, sqlite_url):
    """Two feeds of one host in two processes, with CONCURRENT_REQUESTS_PER_DOMAIN=2:
    each process asks for one page at a time, so the host never answers more than two."""
    for feed in ("polite-a", "polite-b"):
        for n in range(3):
            title = f"Harbour report {feed} {n}"
            path = f"/polite/{feed}/{n}"
            paragraphs = [f"{p} ({feed}, part {n})" for p in _HANGING_MAIN_TEXT]
            newsroom.publish(path, _distinct_article(title, paragraphs), title, feeds=(feed,))
            newsroom.fault(path, "slow", seconds=0.3)  # the answers of both processes overlap
    result = run_cli("-v", "crawl", newsroom.url("/feeds/polite-a.rss"), newsroom.url("/feeds/polite-b.rss"),
                     "--db", sqlite_url, "--no-send", "--processes", "2", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2")
    assert parse_summary(result.stderr)["new"] == 6, result.stderr
    assert newsroom.max_in_flight <= 2
    assert result.stderr.count("127.0.0.1 is shared with 2 processes: at most 1 request(s) at once") == 2


def test_a_host_in_one_share_is_taken_whole_and_a_spread_host_source_by_source(tmp_path):
    urls = ["https://a.example/feed", "https://a.example/other", "https://b.example/feed",
            *(f"http://big.example/{n}.rss" for n in range(6))]
    shards = split_sources(urls, 2)
    units, homes = claim_units(urls, shards)
    assert sorted(i for unit in units for i in unit) == list(range(len(urls)))  # each source in one unit
    assert [0, 1] in units  # a.example's sources stay together
    assert all(len(unit) == 1 for unit in units if "big.example" in urls[unit[0]])
    assert sorted(u for home in homes for u in home) == list(range(len(units)))
    assert spread_hosts(urls, shards) == {"big.example": 2}

    first, second = (SourceClaims(tmp_path, units, homes, n) for n in (0, 1))
    assert first.order()[:len(homes[0])] == homes[0]  # its own units first, in order
    assert first.order()[len(homes[0]):] == list(reversed(homes[1]))  # then the other's, from its end
    assert sorted(first.order()) == list(range(len(units)))
    unit = homes[1][-1]
    assert not first.taken(unit)
    assert first.take(unit) and not second.take(unit) and second.taken(unit)  # exactly one process has it
    assert [second.take(u) for u in homes[1][:-1]] == [True] * (len(homes[1]) - 1)


def test_a_process_takes_over_the_sources_another_has_not_started(newsroom, sqlite_url, tmp_path):
    """One process of a --processes crawl, run on its own: its share is already done
    (claimed), the other process's share is half started. It crawls the rest of the
    other's share, from the end, and nothing that was taken."""
    paths = sorted(ARTICLE_PATHS)
    manifest = {e["path"]: e for e in load_manifest()}
    feeds = []
    for n, path in enumerate(paths):  # a feed per article, all on the newsroom's one host
        entry = manifest[path]
        newsroom.publish(path, (NEWSROOM_DATA / entry["file"]).read_bytes(), entry["title"], feeds=(f"one-{n}",),
                         content_type=f"text/html; charset={entry['charset']}")
        feeds.append(newsroom.url(f"/feeds/one-{n}.rss"))
    shards = split_sources(feeds, 2)
    units, homes = claim_units(feeds, shards)
    claims = SourceClaims(tmp_path / "claims", units, homes, 0)
    claims.directory.mkdir()
    plan = tmp_path / "plan.json"
    claims.write_plan(plan)
    other = SourceClaims.from_plan(plan, 1)
    for unit in homes[0]:  # this process's own share: taken (done) already
        assert other.take(unit)
    started = homes[1][: len(homes[1]) // 2]
    for unit in started:  # the other process has started the first half of its share
        assert other.take(unit)
    result = run_cli("-v", "crawl", *feeds, "--db", sqlite_url, "--no-send",
                     "-s", f"SOURCES_PLAN={plan}", "-s", "SOURCES_PLAN_PROCESS=0")
    summary = parse_summary(result.stderr)
    rest = [u for u in homes[1] if u not in started]
    fetched_feeds = [p for p in newsroom.requested() if p.startswith("/feeds/one-")]
    assert fetched_feeds == [f"/feeds/one-{units[u][0]}.rss" for u in reversed(rest)]  # from the end
    assert summary["sources"] == len(rest) and summary["new"] == len(rest)
    assert result.stderr.count("Taking over") == len(rest)
    assert all(claims.taken(u) for u in range(len(units)))


def test_crawl_in_two_processes_stores_each_article_once(newsroom, db_url, tmp_path):
    """On both backends: the processes share the database's write lock (SQLite's, or
    PostgreSQL's advisory lock), each batch retried while the other holds it."""
    # A second feed on the same host announces two of the articles again: both processes
    # may fetch them, one stores each.
    manifest = [e for e in load_manifest() if e["file"] != "g7.html"]
    for entry in manifest[:2]:
        newsroom.publish(entry["path"], (NEWSROOM_DATA / entry["file"]).read_bytes(), entry["title"],
                         feeds=("second",), content_type=f"text/html; charset={entry['charset']}")
    out = tmp_path / "out.jsonl"
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), newsroom.url("/feeds/second.rss"),
                     "--db", db_url, "-o", str(out), "--processes", "2", "--watch", "wildfires Canada",
                     "--no-send")
    summary = parse_summary(result.stderr)
    assert result.stderr.count("sources=") == 1  # one summary, the total
    assert summary["sources"] == 2 and summary["errors"] == 0
    assert summary["new"] == len(ARTICLE_PATHS)
    lines = read_jsonl(out)
    assert len(lines) == len({a["canonical_url"] for a in lines}) == len(ARTICLE_PATHS)
    assert [a["matched"] for a in lines if "wildfires" in a["url"]] == [["wildfires Canada"]]
    with open_store(db_url).begin() as conn:
        assert conn.execute(select(func.count()).select_from(articles)).scalar() == len(ARTICLE_PATHS)
    # The pages the two processes were sent to: every article at least once, each page of
    # the second feed at most twice.
    fetched = [p for p in newsroom.requested() if p in ARTICLE_PATHS]
    assert set(fetched) == ARTICLE_PATHS and len(fetched) <= len(ARTICLE_PATHS) + 2


def test_processes_creating_one_sqlite_database_at_once_all_succeed(tmp_path):
    """The processes of one crawl open a new database together: creating the schema is
    serialised by SQLite's write lock, so none finds a table half made by another."""
    import subprocess
    import sys

    from conftest import ROOT

    # Each process opens three new databases, all processes at once: switching a new file
    # to WAL mode raced ("database is locked" at once) in ~1 of 40 such openings.
    rounds = [(f"sqlite:///{tmp_path / f'fresh-{n}.db'}", tmp_path / f"go-{n}") for n in range(3)]
    code = ("import os, sys, time\n"
            "from crawler.store import open_store\n"
            "print('ready', flush=True)\n"
            f"for url, go in {[(url, str(go)) for url, go in rounds]!r}:\n"
            "    while not os.path.exists(go):\n"
            "        time.sleep(0.001)\n"
            "    open_store(url)\n")
    children = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for child in children:  # all imported, waiting: then they open each database together
        assert child.stdout.readline().strip() == "ready"
    for _url, go in rounds:
        go.touch()
    results = [(child.wait(timeout=120), child.stderr.read()) for child in children]
    for child in children:
        child.stdout.close()
        child.stderr.close()
    assert [code for code, _ in results] == [0] * 6, results


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _wait_for(condition, seconds: float = 60.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


_HANGING_MAIN_TEXT = (
    "Harbour pilots in the northern port voted on Thursday to extend their strike for a third week, "
    "leaving dozens of container ships anchored offshore while talks with the port authority stalled.",
    "The union said its members would not return until the authority agreed to hire more night-shift "
    "pilots, a demand officials said would cost more than the port earns from late arrivals.",
    "Shipping companies have begun diverting cargo to smaller harbours further south, where queues of "
    "lorries stretched for several kilometres on Thursday afternoon.",
)


def _distinct_article(title: str, paragraphs) -> str:
    """A page no other page of the newsroom copies (so never stored as a duplicate)."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="og:type" content="article"></head><body><article><h1>{title}</h1>'
            f"{body}</article></body></html>")


def _start_hanging_crawl(newsroom, sqlite_url, tmp_path):
    """crawl --processes 2 of the main feed and a second feed, one page of each hanging
    until ``newsroom.release()``; returns the parent once both pages have been requested
    (both crawl processes are then busy, whatever the timing), and its two crawl
    processes."""
    import subprocess
    import sys

    from conftest import ROOT

    # Articles that are not copies of the main feed's: whether a released page still gets
    # stored depends on timing, and a copy would then be stored as a duplicate (counted
    # apart from the new ones).
    entry = next(e for e in load_manifest() if e["file"] == "g7.html")
    newsroom.publish("/hanging/page", (NEWSROOM_DATA / entry["file"]).read_bytes(), "Hanging", feeds=("slow",))
    newsroom.publish("/hanging/main", _distinct_article("Port pilots extend strike", _HANGING_MAIN_TEXT),
                     "Port pilots extend strike", feeds=("main",))
    for path in ("/hanging/page", "/hanging/main"):
        newsroom.fault(path, "hang", seconds=60)
    parent = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "-v", "crawl", newsroom.url("/feeds/main.rss"),
         newsroom.url("/feeds/slow.rss"),
         "--db", sqlite_url, "-o", str(tmp_path / "out.jsonl"), "--processes", "2", "--no-send",
         "-s", "DOWNLOAD_TIMEOUT=30"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: {"/hanging/page", "/hanging/main"} <= set(newsroom.requested()))
    children = _children(parent.pid)
    assert len(children) == 2
    return parent, children


def test_a_terminated_crawl_in_processes_stops_them_and_reports_what_was_stored(newsroom, sqlite_url, tmp_path):
    import signal

    parent, children = _start_hanging_crawl(newsroom, sqlite_url, tmp_path)
    try:
        parent.send_signal(signal.SIGTERM)
        newsroom.release()  # the hanging page answers: the stopping crawl can finish its requests
        _, stderr = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    from pathlib import Path

    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    summary = parse_summary(stderr)
    with open_store(sqlite_url).begin() as conn:
        stored = conn.execute(select(func.count()).select_from(articles)).scalar()
    assert summary["new"] == stored == len(read_jsonl(tmp_path / "out.jsonl"))


def test_killing_the_parent_stops_its_crawl_processes(newsroom, sqlite_url, tmp_path):
    from pathlib import Path

    parent, children = _start_hanging_crawl(newsroom, sqlite_url, tmp_path)
    parent.kill()
    parent.wait()
    # The crawl processes still write to the stderr they inherited: each says it got
    # SIGTERM (without it they would go on until their hanging request times out).
    told = 0
    for line in parent.stderr:
        told += "Received SIGTERM" in line
        if told == 2:
            break
    newsroom.release()
    parent.stderr.close()
    assert told == 2
    assert _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and
                                     "zombie" not in _state(pid) for pid in children))


def _state(pid: int) -> str:
    try:
        text = open(f"/proc/{pid}/status").read()
    except OSError:
        return "zombie"
    return "zombie" if "\nState:\tZ" in text else "running"


def test_one_source_is_crawled_in_one_process_whatever_processes_says(newsroom, sqlite_url, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run_cli("-v", "crawl", newsroom.url("/feeds/main.rss"), "--db", sqlite_url, "-o", str(out),
                     "--processes", "2", "--no-send")
    assert "sources in 2 processes" not in result.stderr and "crawling 1 sources" not in result.stderr
    assert parse_summary(result.stderr)["new"] == len(ARTICLE_PATHS) == len(read_jsonl(out))


def test_two_sources_with_processes_are_split(newsroom, sqlite_url, tmp_path):
    result = run_cli("-v", "crawl", newsroom.url("/feeds/main.rss"), newsroom.url("/feeds/missing.rss"),
                     "--db", sqlite_url, "--processes", "2", "--no-send")
    assert "crawling 2 sources in 2 processes" in result.stderr


def test_on_a_terminal_the_parent_draws_the_processes_summed_counters(newsroom, sqlite_url, tmp_path):
    """A one-process crawl redraws its counters on one line of a terminal; with
    --processes each process writes its counters to a file and the parent draws their
    sum. Run on a real pseudo-terminal: the line ends at the processes' final total."""
    import os
    import pty
    import subprocess
    import sys

    from conftest import ROOT

    main, second = newsroom.url("/feeds/main.rss"), newsroom.url("/feeds/second.rss")
    entry = next(e for e in load_manifest() if e["file"] != "g7.html")  # announced again: stored once
    newsroom.publish(entry["path"], (NEWSROOM_DATA / entry["file"]).read_bytes(), entry["title"],
                     feeds=("second",), content_type=f"text/html; charset={entry['charset']}")
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_DB"}
    child = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", main, second, "--db", sqlite_url,
                              "--processes", "2", "--no-send"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    text = output.decode("utf-8", "replace")
    assert child.wait(timeout=120) == 0, text
    drawn = [part.split("\r")[0].strip() for part in text.split("\r\x1b[2K")[1:]]
    drawn = [line for line in drawn if line.startswith("sources=")]
    assert drawn, text  # at least the final total was drawn
    summary = parse_summary(text.replace("\r\x1b[2K", "\n"))
    assert summary["sources"] == 2 and summary["new"] == len(ARTICLE_PATHS)
    last = dict(pair.split("=") for pair in drawn[-1].split())
    assert int(last["sources"]) == 2 and int(last["new"]) == summary["new"]


def test_progress_counters_are_summed_from_whole_files_and_a_missing_one_counts_nothing(tmp_path):
    from crawler.progress import read_counters, write_counters

    first, second, missing, broken = (tmp_path / name for name in ("a.json", "b.json", "c.json", "d.json"))
    write_counters(str(first), {"sources": 1, "fetched": 10, "new": 7})
    write_counters(str(second), {"sources": 1, "fetched": 5, "new": 5, "errors": 1})
    broken.write_text('{"sources": 1, "fetch', "utf-8")  # not written by write_counters: never half a file
    assert read_counters([first, second, missing, broken]) == {"sources": 2, "fetched": 15, "new": 12, "errors": 1}
    assert not list(tmp_path.glob("*.tmp"))
