"""Subscriptions and alerts through the real CLI, a real crawl and a webhook receiver."""

import json

from conftest import NEWSROOM_DATA, SEED_DATA, parse_summary, publish_held_back, run_cli


def test_subs_test_reports_matches_per_page():
    seed, g7 = str(SEED_DATA / "seed-page.html"), str(NEWSROOM_DATA / "g7.html")
    result = run_cli("subs", "test", '"Security Council" OR Peskov', seed, g7, "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["path"], r["matched"]) for r in lines] == [(seed, True), (g7, False)]
    assert set(lines[0]["terms"]) == {"Security Council", "Peskov"}


def test_a_bad_query_is_refused_with_its_position(sqlite_url):
    result = run_cli("subs", "add", "broken", "(Putin OR", "--notify", "https://x.example/hook",
                     "--db", sqlite_url, check=False)
    assert result.returncode == 2 and "position" in result.stderr


def test_subscription_lifecycle_and_one_alert_per_story(newsroom, db_url, tmp_path):
    hook = newsroom.url("/hooks/korea")
    run_cli("subs", "add", "korea", '"Kim Jong Un" AND (Russia OR Putin)', "--notify", hook,
            "--secret", "s3cret", "--db", db_url)
    run_cli("subs", "add", "g7", "G7 tariffs", "--notify", str(tmp_path / "g7.jsonl"), "--db", db_url)
    listed = run_cli("subs", "list", "--db", db_url).stdout
    assert "korea" in listed and "g7" in listed

    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", db_url, "-o", str(tmp_path / "a.jsonl"),
                     "--no-send")
    assert parse_summary(result.stderr)["matches"] == 1
    pending = run_cli("alerts", "list", "--status", "pending", "--db", db_url).stdout
    assert "korea" in pending and pending.count("\n") == 1

    assert "sent=1" in run_cli("alerts", "send", "--db", db_url).stdout
    posts = [h for h in newsroom.hooks if h["path"] == "/hooks/korea"]
    assert len(posts) == 1
    payload = json.loads(posts[0]["body"])
    assert "Kim Jong Un" in json.dumps(payload, ensure_ascii=False)
    assert posts[0]["headers"].get("X-Newswatch-Signature", "").startswith("sha256=")

    # Nothing new to send; pausing stops new alerts for the G7 story published next.
    assert "sent=0" in run_cli("alerts", "send", "--db", db_url).stdout
    run_cli("subs", "pause", "g7", "--db", db_url)
    publish_held_back(newsroom)
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", db_url)  # sends what it queued
    assert parse_summary(result.stderr)["new"] == 1
    assert not (tmp_path / "g7.jsonl").exists()
    assert len([h for h in newsroom.hooks if h["path"] == "/hooks/korea"]) == 1
    backtest = run_cli("subs", "backtest", "g7", "--since", "1d", "--db", db_url).stdout
    assert "G7 finance ministers" in backtest and "1 alert(s)" in backtest
    run_cli("subs", "rm", "g7", "--db", db_url)
    assert "g7" not in run_cli("subs", "list", "--db", db_url).stdout


def test_crawl_delivers_the_alerts_it_queued(newsroom, sqlite_url, tmp_path):
    target = tmp_path / "alerts.jsonl"
    run_cli("subs", "add", "g7", "G7 AND (tariff* OR Ukraine)", "--notify", str(target), "--db", sqlite_url)
    run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", sqlite_url)
    assert not target.exists()
    publish_held_back(newsroom)
    result = run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", sqlite_url)
    assert "alerts: sent=1" in result.stderr
    [alert] = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert "G7 finance ministers" in json.dumps(alert, ensure_ascii=False)
    run_cli("crawl", newsroom.url("/feeds/main.rss"), "--db", sqlite_url)
    assert len(target.read_text("utf-8").splitlines()) == 1
