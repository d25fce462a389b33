"""Writing articles: a new row, or a new revision of a stored one (history kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, exc, insert, select, update
from sqlalchemy.engine import Connection

from crawler.store import schema
from crawler.store.prepared import Prepared
from crawler.store.repository import to_db_time, utcnow


def parse_time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return to_db_time(value)
    try:
        return to_db_time(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


# Runs once per article: on the driver's cursor (see crawler.store.prepared).
# The id is the database's to give: it is left out of the statement.
_INSERT = Prepared(insert(schema.articles).values(
    {c.key: bindparam(c.key, type_=c.type) for c in schema.articles.c if c.key != "id"})
    .returning(schema.articles.c.id))


def save_article(conn: Connection, item: dict, signature: bytes | None) -> int:
    """Insert the article, or store it as a new revision of ``item['revision_of']``."""
    t = schema.articles
    values = {
        "url": item["url"],
        "canonical_url": item["canonical_url"],
        "guid": item.get("guid"),
        "source_id": item.get("source_id"),
        "title": item.get("title"),
        "text": item["text"],
        "published": parse_time(item.get("published")),
        "published_raw": (str(item["published"])[:40] if item.get("published") else None),
        "modified": parse_time(item.get("modified")),
        "authors": list(item.get("authors") or []),
        "language": item.get("language"),
        "page_language": item.get("page_language"),
        "site_name": item.get("site_name"),
        "source_url": item.get("source_url"),
        "content_hash": item["content_hash"],
        "signature": signature,
        "story_id": item["story_id"],
        "fetched_at": utcnow(),
    }
    previous_id = item.get("revision_of")
    if previous_id is None:
        try:
            return _INSERT.scalar(conn, dict(values, revision=1))
        except conn.dialect.loaded_dbapi.IntegrityError as error:
            # As Connection.execute would: the store pipeline tells "stored meanwhile by
            # another crawler" by SQLAlchemy's IntegrityError.
            raise exc.IntegrityError("INSERT INTO articles", None, error) from error
    old = conn.execute(select(t).where(t.c.id == previous_id)).mappings().one()
    conn.execute(insert(schema.article_revisions).values(
        article_id=previous_id, revision=old["revision"], title=old["title"], text=old["text"],
        content_hash=old["content_hash"], fetched_at=old["fetched_at"]))
    conn.execute(update(t).where(t.c.id == previous_id).values(revision=old["revision"] + 1, **values))
    return previous_id
