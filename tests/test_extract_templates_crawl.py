"""Site templates learned by crawls: a line a site repeats inside every article body is
removed from the next pages, and the learned template survives a restart."""

from datetime import datetime, timedelta, timezone

from conftest import read_jsonl, run_cli

PROMO = "Follow our channel for breaking updates from the Valley Gazette newsroom every day."
TOPICS = ["harbour", "library", "railway", "orchard", "stadium", "bridge", "museum"]


def page(topic: str, n: int) -> str:
    body = "".join(
        f"<p>The {topic} project entered phase {i} this week, with council engineers reviewing "
        f"{topic} plans number {n * 10 + i} and residents asking about {topic} costs in district {i}.</p>"
        for i in range(1, 6))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>The {topic} story</title>'
            f'<meta property="og:type" content="article"></head><body><article><h1>The {topic} story</h1>'
            f'<div class="entry-content">{body}<p>{PROMO}</p></div></article></body></html>')


def test_repeated_in_body_line_is_learned_and_removed_after_restart(newsroom, sqlite_url, tmp_path):
    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    for n, topic in enumerate(TOPICS[:6]):
        newsroom.publish(f"/valley/{topic}", page(topic, n), f"The {topic} story",
                         published=start + timedelta(hours=n), feeds=("valley",))
    first = tmp_path / "first.jsonl"
    run_cli("crawl", newsroom.url("/feeds/valley.rss"), "--db", sqlite_url, "-o", str(first))
    assert len(read_jsonl(first)) == 6
    newsroom.publish("/valley/museum", page("museum", 6), "The museum story",
                     published=start + timedelta(hours=7), feeds=("valley",))
    second = tmp_path / "second.jsonl"
    run_cli("crawl", newsroom.url("/feeds/valley.rss"), "--db", sqlite_url, "-o", str(second))
    [article] = read_jsonl(second)
    assert "museum project entered phase 5" in article["text"]
    assert PROMO not in article["text"]
