"""Scrapy's downloader, with its per-domain concurrency limit kept.

Scrapy 2.19 counts a request as transferring only when its download coroutine first
runs, after the pass over a slot's queue that scheduled it: one pass can start every
queued request for a host, up to ``CONCURRENT_REQUESTS``, whatever
``CONCURRENT_REQUESTS_PER_DOMAIN`` says (scrapy/scrapy#6982). Measured on a
one-host newsroom with a limit of 8: 31 requests at once. And because Twisted's
connection pool keeps at most that limit of idle connections per host, about half of
all requests opened a new TCP connection (a new TLS handshake, on HTTPS).

:class:`PoliteDownloader` (``DOWNLOADER`` in the settings) counts a request as
transferring as it leaves the queue. Scrapy's own code adds it again when the download
starts (a set: no change) and removes it when the download ends, as before.
"""

from __future__ import annotations

from collections import deque

from scrapy.core.downloader import Downloader


class _CountedQueue(deque):
    """A slot's queue: what leaves it counts as transferring at once."""

    def __init__(self, slot, items=()):
        super().__init__(items)
        self._slot = slot

    def popleft(self):
        item = super().popleft()
        self._slot.transferring.add(item[0])
        return item


class PoliteDownloader(Downloader):
    """:class:`scrapy.core.downloader.Downloader`, never over a slot's concurrency."""

    def _get_slot(self, request, *args, **kwargs):
        key, slot = super()._get_slot(request, *args, **kwargs)
        if not isinstance(slot.queue, _CountedQueue):
            slot.queue = _CountedQueue(slot, slot.queue)
        return key, slot
