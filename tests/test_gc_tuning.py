"""The garbage collector tuning extension (crawler.gc_tuning), driven by Scrapy's own
signals on real crawlers."""

from __future__ import annotations

import gc
import weakref

import pytest
from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.exceptions import ConfigError
from crawler.gc_tuning import GarbageCollectorTuning, parse_threshold


@pytest.fixture(autouse=True)
def collector_as_python_left_it():
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def _crawler(**settings):
    crawler = get_crawler(Spider, settings_dict=settings)
    extension = GarbageCollectorTuning.from_crawler(crawler)
    return crawler, extension


def _open(crawler):
    crawler.signals.send_catch_log(signals.spider_opened, spider=Spider("s"))


def _close(crawler):
    crawler.signals.send_catch_log(signals.spider_closed, spider=Spider("s"), reason="finished")


def test_tuned_while_the_crawl_runs_and_restored_after():
    gc.set_threshold(700, 10, 10)
    crawler, _ = _crawler(GC_THRESHOLD=[40_000, 15, 90], GC_FREEZE=True)
    _open(crawler)
    assert gc.get_threshold() == (40_000, 15, 90)
    assert gc.get_freeze_count() > 0
    _close(crawler)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_overlapping_crawls_of_one_process_restore_once_the_last_closes():
    gc.set_threshold(700, 10, 10)
    first, _ = _crawler(GC_THRESHOLD="30000,20,100")
    second, _ = _crawler(GC_THRESHOLD="30000,20,100")
    _open(first)
    _open(second)
    _close(first)
    assert gc.get_threshold() == (30_000, 20, 100)
    assert gc.get_freeze_count() > 0
    _close(second)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_objects_frozen_at_the_start_and_dropped_during_the_crawl_are_collected_after_it():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    collected = []
    weakref.finalize(a, collected.append, "a")
    crawler, _ = _crawler()
    _open(crawler)  # the cycle is alive: frozen with the rest
    del a, b
    gc.collect()
    assert collected == [], "a frozen object is out of the collector's sight"
    _close(crawler)
    gc.collect()
    assert collected == ["a"]


def test_switched_off_or_misconfigured():
    with pytest.raises(NotConfigured):
        _crawler(GC_THRESHOLD=[], GC_FREEZE=False)
    with pytest.raises(ConfigError, match="GC_THRESHOLD"):
        _crawler(GC_THRESHOLD="fast")
    with pytest.raises(ConfigError, match="GC_THRESHOLD"):
        parse_threshold([1, 2, 3, 4])
    assert parse_threshold("100, 5") == (100, 5)
