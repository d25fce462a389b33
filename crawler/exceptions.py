"""Every error newswatch raises on purpose derives from :class:`NewswatchError`.

::

    NewswatchError
    ├── ConfigError            bad settings, schedules or CLI arguments (names file/line/key)
    │   └── QueryError         a watch/subscription query that does not parse (has .position)
    ├── ExtractionError        a page could not be turned into an article
    │   └── NotAnArticle       the page is a home/section/tag/search/error page
    ├── FeedError              a feed that cannot be parsed at all
    ├── StoreError             the database refused or is unreachable
    └── DeliveryError          a notifier failed to deliver an alert (retried)
        ├── RetryLater         the receiver asked us to come back (429, Retry-After)
        └── DeliveryRefused    the receiver refused it for good (4xx): no retry

Items dropped by the pipelines use :class:`scrapy.exceptions.DropItem` subclasses
defined next to the pipeline that drops them; their ``reason`` names the stats key.
"""


class NewswatchError(Exception):
    """Root of newswatch's own exceptions."""


class ConfigError(NewswatchError):
    """Invalid configuration: a message naming the file, line or key, and what was expected."""


class QueryError(ConfigError):
    """A query that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, query: str = "", position: int = 0):
        self.query = query
        self.position = position
        self.bare_message = message
        if query:
            pointer = " " * position + "^"
            message = f"{message} at position {position}\n  {query}\n  {pointer}"
        super().__init__(message)


class ExtractionError(NewswatchError):
    """The page could not be turned into an article."""


class NotAnArticle(ExtractionError):
    """The page is not an article (home, section, tag, search or error page)."""


class FeedError(NewswatchError):
    """A feed that cannot be parsed."""


class StoreError(NewswatchError):
    """The database refused an operation or is unreachable."""


class WriteLockBusy(StoreError):
    """Another process holds the database's write lock (see ``Store.begin_writing``)."""


class DeliveryError(NewswatchError):
    """A notifier could not deliver an alert."""


class RetryLater(DeliveryError):
    """The receiver asked to retry later; ``delay`` is in seconds (or None)."""

    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class DeliveryRefused(DeliveryError):
    """The receiver refused the alert for good (e.g. HTTP 4xx other than 429): do not retry."""
