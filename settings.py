"""Project settings for `scrapy crawl` run from this directory.

The defaults live in ``crawler/settings.py`` (so the installed ``newswatch`` command has
them too); override them here for this deployment.
"""

from crawler.settings import *  # noqa: F401,F403
