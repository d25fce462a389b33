"""The peer of the throughput benchmark: news-please's extractor on generated pages.

    python -m bench.peer --articles N --indices 0,50,100 --out stats.json

Renders the chosen pages of the generated newsroom itself (no fetching: in favour of
the peer) and times ``NewsPlease.from_html(html, url=...)`` on each, with
``fetch_images=False`` so that no image is downloaded. The time reported is that of the
extraction loop only (wall and CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    from bench.newsroom_gen import DEFAULT_SEED, Newsroom

    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--epoch", required=True)
    parser.add_argument("--indices", required=True, help="comma-separated article numbers")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    from newsplease import NewsPlease

    room = Newsroom(args.articles, args.templates, args.seed, datetime.fromisoformat(args.epoch))
    indices = [int(i) for i in args.indices.split(",") if i]
    pages = [(room.page(i, args.base_url).decode("utf-8"), room.url(i, args.base_url)) for i in indices]
    extracted = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    for html, url in pages:
        article = NewsPlease.from_html(html, url=url, fetch_images=False)
        if getattr(article, "maintext", None):
            extracted += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"pages": len(pages), "extracted": extracted, "seconds": seconds, "cpu": cpu}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
