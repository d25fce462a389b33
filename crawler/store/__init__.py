"""Persistent state: articles, stories, sources, subscriptions and the alert outbox.

``open_store(url)`` returns the :class:`Store` for a SQLAlchemy URL (SQLite by
default, PostgreSQL for scale-out); one engine is shared per URL and process.
"""

from crawler.store.repository import DEFAULT_DB_URL, Store, close_stores, open_store, resolve_db_url

__all__ = ["DEFAULT_DB_URL", "Store", "close_stores", "open_store", "resolve_db_url"]
