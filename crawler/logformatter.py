"""Log lines for items: one short line with the URL, never the whole page."""

from __future__ import annotations

import logging

from scrapy import logformatter


class NewswatchLogFormatter(logformatter.LogFormatter):
    """Drops are routine (counted under ``newswatch/drops/<reason>``): logged at DEBUG,
    without the item. Scraped items and item errors name the URL only."""

    def dropped(self, item, exception, response, spider=None):
        return {"level": logging.DEBUG, "msg": "Dropped: %(exception)s", "args": {"exception": exception}}

    def scraped(self, item, response, spider=None):
        return {"level": logging.DEBUG, "msg": "Stored %(url)s", "args": {"url": item.get("url")}}

    def item_error(self, item, exception, response, spider=None):
        return {"level": logging.ERROR, "msg": "Error processing %(url)s",
                "args": {"url": item.get("url") if hasattr(item, "get") else item}}
