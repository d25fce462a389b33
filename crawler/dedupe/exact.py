"""Exact duplicates: the stored article that a new one repeats, and why.

An article repeats a stored one when it has the same canonical URL, the same feed
GUID, or the same normalised body (:func:`crawler.dedupe.fingerprints.content_hash`).
The answer says which (``match``) so the pipeline can tell a plain repeat (drop it)
from a *revision*: same canonical URL, different body (``revision`` is true).

Each check is one indexed lookup (``uq_articles_canonical_url``, ``ix_articles_guid``,
``ix_articles_content_hash``); nothing scans the table.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from crawler.store.schema import articles

_COLUMNS = (articles.c.id, articles.c.url, articles.c.canonical_url, articles.c.guid,
            articles.c.story_id, articles.c.content_hash, articles.c.revision)


def find_duplicate(conn: Connection, canonical_url: str | None, guid: str | None = None,
                   content_hash: int | None = None) -> dict | None:
    """The stored article this one repeats, or None.

    Returns the row (``id``, ``url``, ``canonical_url``, ``guid``, ``story_id``,
    ``content_hash``, ``revision``) plus ``match`` (``"url"``, ``"guid"`` or
    ``"content"``, the first that holds in that order) and ``revision``: true when the
    URL or GUID matched but the body changed (``content_hash`` given and different).
    """
    checks = []
    if canonical_url:
        checks.append(("url", articles.c.canonical_url == canonical_url))
    if guid:
        checks.append(("guid", articles.c.guid == guid))
    if content_hash is not None:
        checks.append(("content", articles.c.content_hash == content_hash))
    for match, condition in checks:
        row = conn.execute(select(*_COLUMNS).where(condition).order_by(articles.c.id).limit(1)).mappings().first()
        if row is not None:
            found = dict(row)
            found["match"] = match
            found["revision"] = (match != "content" and content_hash is not None
                                 and found["content_hash"] != content_hash)
            return found
    return None
