"""newswatch: scheduled news scraping and monitoring.

The package follows the data flow, one folder per stage::

    spiders/   what gets fetched: feeds, sitemaps, pages (Scrapy spiders)
    extract/   HTML -> clean article: body, title, dates, authors, language, source link
    dedupe/    URL canonicalisation, fingerprints, near-duplicate index, stories
    store/     SQLAlchemy schema and the Store (SQLite default, PostgreSQL)
    alerts/    query language, matcher, outbox, notifiers
    pipelines.py  thin Scrapy adapters calling the stages above, in order
    daemon.py  the scheduler process (`newswatch run`)
    cli.py     the `newswatch` command
"""

__version__ = "0.1.0"
