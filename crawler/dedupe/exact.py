"""Exact duplicates: the stored article that a new one repeats, and why.

An article repeats a stored one when it has the same canonical URL, the same feed
GUID, or the same normalised body (:func:`crawler.dedupe.fingerprints.content_hash`).
The answer says which (``match``) so the pipeline can tell a plain repeat (drop it)
from a *revision*: same canonical URL, different body (``revision`` is true).

Each check is one indexed lookup (``uq_articles_canonical_url``, ``ix_articles_guid``,
``ix_articles_content_hash``); nothing scans the table.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from crawler.store.prepared import Prepared

_COLUMNS = "id, url, canonical_url, guid, story_id, content_hash, revision"
_MATCHES = ("url", "guid", "content")

# One round trip for the three indexed look-ups; each part yields its first row, if any.
_LOOKUP = Prepared(text(" UNION ALL ".join(
    f"SELECT * FROM (SELECT {rank} AS rank, {_COLUMNS} FROM articles WHERE {column} = :{param} "
    f"ORDER BY id LIMIT 1) AS by_{param}"
    for rank, (column, param) in enumerate((("canonical_url", "url"), ("guid", "guid"),
                                            ("content_hash", "content"))))))
_FIELDS = ("rank", *_COLUMNS.split(", "))


def find_duplicate(conn: Connection, canonical_url: str | None, guid: str | None = None,
                   content_hash: int | None = None) -> dict | None:
    """The stored article this one repeats, or None.

    Returns the row (``id``, ``url``, ``canonical_url``, ``guid``, ``story_id``,
    ``content_hash``, ``revision``) plus ``match`` (``"url"``, ``"guid"`` or
    ``"content"``, the first that holds in that order) and ``revision``: true when the
    URL or GUID matched but the body changed (``content_hash`` given and different).
    """
    rows = _LOOKUP.all(conn, {"url": canonical_url or None, "guid": guid or None, "content": content_hash})
    if not rows:
        return None
    found = dict(zip(_FIELDS, min(rows)))
    found["match"] = _MATCHES[found.pop("rank")]
    found["revision"] = (found["match"] != "content" and content_hash is not None
                         and found["content_hash"] != content_hash)
    return found
