"""The database schema, in one place, for every stage (SQLAlchemy Core).

Times are stored as naive UTC ``DateTime`` values (SQLite has no time zones);
:mod:`crawler.store.repository` converts at the boundary. 64-bit hashes are
stored as signed integers so they fit ``BIGINT`` on PostgreSQL.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# An autoincrementing 64-bit key that SQLite also accepts as its ROWID alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("name", String(200)),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_run_at", DateTime),
    Column("last_success_at", DateTime),
    Column("last_new_at", DateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_new_count", Integer),
    Column("runs", Integer, nullable=False, default=0),
    Column("articles_total", Integer, nullable=False, default=0),
    Column("health", String(20), nullable=False, default="ok"),
    Column("health_since", DateTime),  # when the current health state began (daemon)
    Column("next_run_at", DateTime),  # the daemon's next scheduled run, for `newswatch status`
    Column("poll_interval", Float),  # seconds between runs now (adaptive polling moves it)
    Column("created_at", DateTime, nullable=False),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Id, primary_key=True),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("guid", Text),
    Column("source_id", ForeignKey("sources.id")),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("published", DateTime),
    Column("published_raw", String(40)),
    Column("modified", DateTime),
    Column("authors", JSON, nullable=False, default=list),
    Column("language", String(8)),
    Column("page_language", String(8)),
    Column("site_name", Text),
    Column("source_url", Text),
    Column("content_hash", BigInteger, nullable=False),
    Column("signature", LargeBinary),
    Column("story_id", String(40), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("fetched_at", DateTime, nullable=False),
    UniqueConstraint("canonical_url", name="uq_articles_canonical_url"),
)
Index("ix_articles_guid", articles.c.guid)
Index("ix_articles_content_hash", articles.c.content_hash)
Index("ix_articles_story_id", articles.c.story_id)
Index("ix_articles_fetched_at", articles.c.fetched_at)

# Earlier versions of an article whose page changed (the row in `articles` is the latest).
article_revisions = Table(
    "article_revisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("article_id", ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("content_hash", BigInteger, nullable=False),
    Column("fetched_at", DateTime, nullable=False),
)
Index("ix_article_revisions_article", article_revisions.c.article_id)

stories = Table(
    "stories",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("first_article_id", BigInteger),
    Column("title", Text),
    Column("first_seen_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("size", Integer, nullable=False, default=1),
    Column("merged_into", String(40)),  # set when a later link merged this story into another
)

# Locality-sensitive-hashing buckets of the near-duplicate index: one row per (band, article).
story_bands = Table(
    "story_bands",
    metadata,
    # The primary key is the lookup index itself (a WITHOUT ROWID table on SQLite,
    # index-only scans on PostgreSQL).
    Column("band", BigInteger, primary_key=True, autoincrement=False),
    Column("article_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", DateTime, nullable=False),
    sqlite_with_rowid=False,
)
Index("ix_story_bands_created_at", story_bands.c.created_at)

# Learned site templates: how many pages of a site carried a given boilerplate line.
site_templates = Table(
    "site_templates",
    metadata,
    Column("site", String(255), primary_key=True),
    Column("fingerprint", BigInteger, primary_key=True),
    Column("pages", Integer, nullable=False, default=0),
    Column("sample", Text),
)
site_pages = Table(
    "site_pages",
    metadata,
    Column("site", String(255), primary_key=True),
    Column("pages", Integer, nullable=False, default=0),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("query", Text, nullable=False),
    Column("targets", JSON, nullable=False, default=list),
    Column("mode", String(20), nullable=False, default="instant"),
    Column("digest_at", String(10)),
    Column("digest_day", String(10)),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("sources", JSON, nullable=False, default=list),
    Column("languages", JSON, nullable=False, default=list),
    Column("secret", Text),
    Column("alert_revisions", Boolean, nullable=False, default=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("origin", String(200), nullable=False, default="cli"),
    Column("created_at", DateTime, nullable=False),
)

# The alert outbox: written in the same transaction as the article that caused it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),  # stable id receivers deduplicate on
    Column("subscription_id", ForeignKey("subscriptions.id", ondelete="CASCADE")),
    Column("subscription", String(200), nullable=False),
    Column("story_id", String(40), nullable=False),
    Column("article_id", BigInteger),
    Column("target", Text, nullable=False),
    Column("kind", String(20), nullable=False, default="article"),
    Column("payload", JSON, nullable=False),
    Column("status", String(12), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("due_at", DateTime),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("lease", String(32)),  # token of the dispatcher sending it (status 'sending')
    Column("batch_id", String(64)),  # the message id of a digest/flood batch it went out in
)
# Every new alert enters each index below but the two partial ones, so there are few:
# each costs a B-tree insert per alert, on the crawl's hot path.
Index("ix_alerts_status_next", alerts.c.status, alerts.c.next_attempt_at)
# A story's alerts (an article's existing alerts; stories merging: their alerts follow).
Index("ix_alerts_story_subscription", alerts.c.story_id, alerts.c.subscription)
Index("ix_alerts_subscription_created", alerts.c.subscription, alerts.c.created_at)  # flood control
Index("ix_alerts_open_batch", alerts.c.subscription, alerts.c.kind, alerts.c.status, alerts.c.due_at)
# Only rows being sent have a lease, only sent digests/batches a batch id: new rows stay out.
# (Both backends use a partial "IS NOT NULL" index for "= ?" and "IN (...)" look-ups.)
Index("ix_alerts_leased", alerts.c.lease, sqlite_where=alerts.c.lease.isnot(None),
      postgresql_where=alerts.c.lease.isnot(None))
Index("ix_alerts_batched", alerts.c.batch_id, sqlite_where=alerts.c.batch_id.isnot(None),
      postgresql_where=alerts.c.batch_id.isnot(None))

# Indexes an older newswatch made that the ones above replace: dropped on upgrade.
RETIRED_INDEXES = {"alerts": ("ix_alerts_subscription_story", "ix_alerts_story", "ix_alerts_lease",
                              "ix_alerts_batch")}

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source_id", ForeignKey("sources.id", ondelete="CASCADE")),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(12), nullable=False, default="running"),
    Column("fetched", Integer, nullable=False, default=0),
    Column("new", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("duration", Float),
)

# One row per database: who runs the scheduler (a lease with a heartbeat).
scheduler_lock = Table(
    "scheduler_lock",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)
