"""find_duplicate: same canonical URL, same GUID or same normalised body, on every backend."""

import pytest

from crawler.dedupe.exact import find_duplicate
from crawler.dedupe.fingerprints import content_hash
from crawler.store.articles import save_article
from crawler.store.repository import Store

BODY = "“It will be a full-blown visit,” Peskov said.\n\nA formal dinner is planned."


@pytest.fixture
def store(db_url):
    store = Store.from_url(db_url)
    yield store
    store.dispose()


def _save(store, **item):
    item.setdefault("story_id", "s1")
    item["content_hash"] = content_hash(item["text"])
    with store.begin() as conn:
        return save_article(conn, item, None)


def test_find_duplicate(store):
    stored = _save(store, url="https://www.wire.example/a/?utm_source=x", canonical_url="https://wire.example/a",
                   guid="wire-582656", text=BODY)
    with store.begin() as conn:
        assert find_duplicate(conn, "https://other.example/b", "g-unknown", content_hash("Other text")) is None

        by_url = find_duplicate(conn, "https://wire.example/a", None, content_hash(BODY))
        assert (by_url["id"], by_url["match"], by_url["revision"]) == (stored, "url", False)
        assert by_url["url"] == "https://www.wire.example/a/?utm_source=x" and by_url["story_id"] == "s1"

        revised = find_duplicate(conn, "https://wire.example/a", None, content_hash(BODY + " Updated."))
        assert (revised["match"], revised["revision"]) == ("url", True)

        by_guid = find_duplicate(conn, "https://feeds.example/x", "wire-582656", None)
        assert (by_guid["id"], by_guid["match"]) == (stored, "guid")

        # Same body with other quotes and spacing, at another address.
        copy = '"It will be a full-blown visit," Peskov said. A formal dinner is planned.'
        by_content = find_duplicate(conn, "https://copy.example/y", None, content_hash(copy))
        assert (by_content["id"], by_content["match"], by_content["revision"]) == (stored, "content", False)
