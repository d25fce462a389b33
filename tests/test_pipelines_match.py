"""The compiled subscriptions are reused across crawls of one process until they change."""

from crawler.alerts.subscriptions import add_subscription, set_paused
from crawler.pipelines import MatchPipeline
from crawler.store import Store

ARTICLE = {"title": "Talks", "text": "Putin will meet Kim Jong Un in Vladivostok.", "url": "https://a.example/1"}


def test_compiled_matcher_is_reused_until_subscriptions_change(db_url, tmp_path):
    store = Store.from_url(db_url)
    target = str(tmp_path / "a.jsonl")
    with store.begin() as conn:
        add_subscription(conn, "korea", '"Kim Jong Un"', [target])
    first, subs = MatchPipeline._compiled(store, ("Putin",))
    again, _ = MatchPipeline._compiled(store, ("Putin",))
    assert again is first and set(first.match(ARTICLE)) == {"Putin", "sub:korea"}

    with store.begin() as conn:
        add_subscription(conn, "summit", "Vladivostok", [target])
    changed, subs = MatchPipeline._compiled(store, ("Putin",))
    assert changed is not first and set(changed.match(ARTICLE)) == {"Putin", "sub:korea", "sub:summit"}

    with store.begin() as conn:
        set_paused(conn, "korea", True)
    paused, subs = MatchPipeline._compiled(store, ("Putin",))
    assert set(paused.match(ARTICLE)) == {"Putin", "sub:summit"} and set(subs) == {"sub:summit"}
    store.dispose()
