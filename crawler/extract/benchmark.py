"""``newswatch bench extract DIR``: body-extraction quality and speed, ours vs trafilatura
and news-please (when the ``[bench]`` extra is installed).

DIR holds ``html/<id>.html.gz`` (or ``.html``) and ``ground-truth.json`` (id ->
{url, articleBody}), the layout of the Article Extraction Benchmark. Scoring follows
``tests/data/aeb-dev/README.md``: tokens are ``\\w+`` runs, texts become multisets of
4-token shingles (a 1-3 token text is one shingle); per page precision and recall;
corpus precision is the mean over pages with output, corpus recall the mean over all
pages, F1 their harmonic mean.

Run: ``.venv/bin/python -m crawler.extract.benchmark DIR [--only ours|trafilatura]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+")


def shingles(text: str, size: int = 4) -> Counter:
    """The multiset of ``size``-token shingles of ``text`` (one shingle if shorter)."""
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < size:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1))


def score_page(predicted: str, truth: str) -> tuple[float | None, float]:
    """(precision, recall) of one page; precision is None when the output is empty."""
    pred, gold = shingles(predicted), shingles(truth)
    tp = sum((pred & gold).values())
    fp = sum(pred.values()) - tp
    fn = sum(gold.values()) - tp
    if not pred:
        return None, 1.0 if fn == 0 else 0.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def score_corpus(pairs: Iterable[tuple[str, str]]) -> dict:
    """Corpus precision, recall and F1 over (predicted, truth) pairs."""
    precisions, recalls = [], []
    for predicted, truth in pairs:
        p, r = score_page(predicted, truth)
        if p is not None:
            precisions.append(p)
        recalls.append(r)
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "pages": len(recalls),
            "empty": len(recalls) - len(precisions)}


def load_pages(directory: str | Path) -> list[tuple[str, str, bytes, str]]:
    """(id, url, html bytes, truth body) for every page of a benchmark directory."""
    directory = Path(directory)
    truth = json.loads((directory / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        gz, plain = directory / "html" / f"{page_id}.html.gz", directory / "html" / f"{page_id}.html"
        if gz.exists():
            html = gzip.decompress(gz.read_bytes())
        elif plain.exists():
            html = plain.read_bytes()
        else:
            logger.warning("no html for benchmark page %s", page_id)
            continue
        entry = truth[page_id]
        pages.append((page_id, entry.get("url") or "", html, entry.get("articleBody") or ""))
    return pages


def extract_ours(html: bytes, url: str) -> str:
    from crawler.exceptions import NotAnArticle
    from crawler.extract import extract_article

    try:
        return extract_article(html, url)["text"]
    except NotAnArticle:
        return ""


def extract_trafilatura(html: bytes, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def extract_news_please(html: bytes, url: str) -> str:
    """news-please (the peer of ``python -m bench``), images not fetched. A page it fails
    on (e.g. Japanese without its optional tokenizer) counts as an empty output."""
    from newsplease import NewsPlease

    try:
        article = NewsPlease.from_html(html.decode("utf-8", "replace"), url=url or None, fetch_images=False)
    except Exception as exc:  # its failure on one page is part of its score
        logger.info("news-please failed on %s: %s", url, exc)
        return ""
    return getattr(article, "maintext", None) or ""


EXTRACTORS: dict[str, Callable[[bytes, str], str]] = {
    "newswatch": extract_ours,
    "trafilatura": extract_trafilatura,
    "news-please": extract_news_please,
}


DEFAULT_EXTRACTORS = ("newswatch", "trafilatura")  # news-please with --only (it needs the [bench] extra)


def available(name: str) -> bool:
    from importlib.util import find_spec

    return name != "news-please" or find_spec("newsplease") is not None


def run_all(pages, names: list[str], repeat: int = 1) -> tuple[list[dict], dict[str, list[str]]]:
    """Score every extractor; time them interleaved page by page, in CPU seconds.

    Interleaving (and alternating the order on each page) gives every extractor the same
    machine conditions; CPU time (``time.process_time``) is not inflated by other
    processes competing for the cores, as wall-clock time would be.
    """
    outputs: dict[str, list[str]] = {name: [] for name in names}
    cpu = {name: 0.0 for name in names}
    for index, (_page_id, url, html, _truth) in enumerate(pages):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            best, text = None, ""
            for _ in range(max(1, repeat)):
                start = time.process_time()
                text = EXTRACTORS[name](html, url)
                elapsed = time.process_time() - start
                best = elapsed if best is None else min(best, elapsed)
            cpu[name] += best
            outputs[name].append(text)
    results = []
    for name in names:
        result = score_corpus(zip(outputs[name], (p[3] for p in pages)))
        result["name"] = name
        result["cpu_seconds"] = cpu[name]
        result["pages_per_second"] = len(pages) / cpu[name] if cpu[name] else float("inf")
        results.append(result)
    return results, outputs


def format_table(results: list[dict]) -> str:
    lines = [f"{'extractor':<14} {'F1':>7} {'precision':>10} {'recall':>7} {'empty':>6} {'pages/s':>8}  (CPU time, one process)"]
    for r in results:
        lines.append(f"{r['name']:<14} {r['f1']:>7.4f} {r['precision']:>10.4f} {r['recall']:>7.4f}"
                     f" {r['empty']:>6d} {r['pages_per_second']:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="newswatch bench extract",
                                     description="Body F1/precision/recall and pages/s: newswatch, "
                                                 "trafilatura and (when installed) news-please.")
    parser.add_argument("directory", help="benchmark directory: html/<id>.html.gz + ground-truth.json")
    parser.add_argument("--only", choices=sorted(EXTRACTORS), action="append",
                        help="run only this extractor (repeatable)")
    parser.add_argument("--per-page", action="store_true", help="also print per-page F1 (worst first)")
    parser.add_argument("--repeat", type=int, default=1, help="timing passes per page (the fastest is kept)")
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    if not (directory / "ground-truth.json").is_file():
        print(f"{directory}: no ground-truth.json (expected html/<id>.html.gz + ground-truth.json)",
              file=sys.stderr)
        return 2
    pages = load_pages(directory)
    names = args.only or list(DEFAULT_EXTRACTORS)
    missing = [name for name in names if not available(name)]
    if missing:
        print(f"not installed: {', '.join(missing)} (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    # Warm up imports and caches once so the first extractor is not charged for them.
    for name in names:
        EXTRACTORS[name](pages[0][2], pages[0][1])
    results, per_page = run_all(pages, names, args.repeat)
    print(f"{len(pages)} pages from {directory}")
    print(format_table(results))
    if args.per_page:
        for name in names:
            rows = []
            for (page_id, url, _html, truth), out in zip(pages, per_page[name]):
                p, r = score_page(out, truth)
                f = 0.0 if not p or not r else 2 * p * r / (p + r)
                rows.append((f, p or 0.0, r, page_id[:10], url[:70]))
            print(f"\n{name}: per page, worst first")
            for f, p, r, pid, url in sorted(rows)[:20]:
                print(f"  {f:.3f} P={p:.3f} R={r:.3f} {pid} {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
