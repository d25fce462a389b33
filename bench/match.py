"""Benchmark: match ~5 KB articles against 100,000 alert subscriptions.

Run: ``.venv/bin/python bench/match.py [--subs 100000] [--articles 200] [--naive-subs 2000]``
(~6 min on 2 busy cores). While iterating: ``--quick`` (the wide scenario only, ~2 min),
or ``--quick --subs 20000 --naive-subs 200`` (~30 s).

Text and vocabulary come from the 60 real news/blog article bodies in
``tests/data/aeb-dev/ground-truth.json`` (English mostly, some Russian and Portuguese):

* articles: 200 slices of ~5,000 characters cut from those bodies laid end to end
  (different start bodies and offsets), title = the slice's first 12 words, url and
  language from the page the slice starts in;
* subscriptions: generated with a fixed seed from that vocabulary, leaving out the 150
  most frequent words (nobody subscribes to "the"); a word is drawn with weight
  sqrt(count), so frequent news words are subscribed more often than rare ones.
  Shapes: single words, several words, real two/three-word phrases from the corpus,
  ORs, NOT/-, prefixes, NEAR/n, title:/site:/lang: scopes, nested groups.

It reports the time to parse+compile all subscriptions with :class:`Matcher`, the
median/p95/max time to match one article, how many candidates and matches an article
has, and the same for a naive loop that runs one compiled regex per term of every
subscription (on fewer subscriptions; its per-article time is extrapolated linearly
to the full count, clearly labelled).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import statistics
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from crawler.alerts.matcher import ArticleIndex, Matcher
from crawler.alerts.query import And, Meta, Near, Not, Or, Term, parse_query
from crawler.alerts.text import fold_text, tokenize

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "aeb-dev" / "ground-truth.json"
SEED = 20240611


def load_corpus():
    pages = json.loads(CORPUS.read_text("utf-8"))
    return [(p["url"], p["articleBody"]) for _, p in sorted(pages.items())]


def make_articles(pages, count: int, size: int = 5000):
    """Slices of ~``size`` characters of real text, cut at word boundaries."""
    stream = ""
    starts = []
    for url, body in pages:
        starts.append((len(stream), url))
        stream += body + "\n\n"
    articles = []
    for i in range(count):
        page_start, url = starts[i % len(starts)]
        begin = page_start + (i // len(starts)) * 1500
        begin = stream.find(" ", begin) + 1
        end = stream.rfind(" ", begin, begin + size)
        text = stream[begin:end] if end > begin else stream[begin : begin + size]
        if len(text) < size // 2:  # near the end of the stream: wrap around
            text = (text + " " + stream[: size - len(text)]).strip()
        words = text.split()
        lang = "ru" if re.search("[а-яА-Я]", text) else "en"
        articles.append({"title": " ".join(words[:12]), "text": text, "url": url, "language": lang})
    return articles


class Vocabulary:
    """What people subscribe to, taken from real pages: named entities (words written
    capitalised even mid-sentence), specific content words (outside the 1,000 most
    frequent words), and names/phrases of two or three words; weights sqrt(count)."""

    def __init__(self, pages, common_words: int = 1000):
        counts: Counter[str] = Counter()
        capitalised: Counter[str] = Counter()
        midsentence_cap: Counter[str] = Counter()
        grams: Counter[tuple[str, ...]] = Counter()
        word_re = re.compile(r"[^\W_\d]+(?:[-'’][^\W_\d]+)*")
        for _, body in pages:
            for para in body.split("\n"):
                words = []
                for m in word_re.finditer(para):
                    word = m.group()
                    if "'" in word or "’" in word:  # "I'm", "Kong’s": not what people subscribe to
                        continue
                    lower = word.lower()
                    counts[lower] += 1
                    before = para[: m.start()].rstrip()
                    if word[0].isupper():
                        capitalised[lower] += 1
                        if before and before[-1] not in ".!?\"“”«»:":
                            midsentence_cap[lower] += 1
                    words.append(word)
                grams.update(zip(words, words[1:]))
                grams.update(zip(words, words[1:], words[2:]))
        common = {w for w, _ in counts.most_common(common_words)}
        self.entities = [
            w for w, n in counts.items()
            if capitalised[w] >= 0.9 * n and midsentence_cap[w] and w not in common and len(w) > 1
        ]
        entity_set = set(self.entities)
        self.entity_weights = [counts[w] ** 0.5 for w in self.entities]
        self.words = [w for w in counts if w not in common and w not in entity_set and len(w) >= 4]
        self.word_weights = [counts[w] ** 0.5 for w in self.words]
        self.phrases, self.phrase_weights = [], []
        for gram, n in grams.items():
            lowers = [g.lower() for g in gram]
            names = all(g in entity_set for g in lowers)
            topical = n >= 2 and lowers[0] not in common and lowers[-1] not in common
            if names or topical:
                self.phrases.append(" ".join(gram))
                self.phrase_weights.append(n**0.5)
        self.hosts = sorted({urlsplit(url).hostname for url, _ in pages})


def generate_subscriptions(vocab: Vocabulary, count: int, seed: int = SEED, novel: float = 0.0) -> list[str]:
    """``novel``: share of terms replaced by a made-up two-name phrase ("Hamlin
    Bridenstine"), standing for the long tail of things people follow that today's
    articles do not mention."""
    rng = random.Random(seed)

    def made_up():
        first, second = rng.choices(vocab.entities, vocab.entity_weights, k=2)
        return f'"{first.title()} {second.title()}"'

    def word():
        if rng.random() < novel:
            return made_up()
        if rng.random() < 0.6:
            return rng.choices(vocab.entities, vocab.entity_weights)[0]
        return rng.choices(vocab.words, vocab.word_weights)[0]

    def phrase():
        if rng.random() < novel:
            return made_up()
        return '"' + rng.choices(vocab.phrases, vocab.phrase_weights)[0] + '"'

    def term():
        return phrase() if rng.random() < 0.3 else word()

    def prefix():  # "sanction*": the stem of a longer word
        w = rng.choices(vocab.words, vocab.word_weights)[0]
        return w[: max(5, len(w) - 3)] + "*" if len(w) >= 7 and w.isalpha() else w

    shapes = [
        (22, lambda: word()),
        (12, lambda: f"{word()} {word()}"),
        (5, lambda: f"{word()} {word()} {word()}"),
        (14, lambda: phrase()),
        (10, lambda: " OR ".join(term() for _ in range(rng.randint(2, 4)))),
        (8, lambda: f"{term()} -{term()}"),
        (6, lambda: f"{prefix()} {word()}"),
        (3, lambda: prefix()),
        (4, lambda: f"title:{term()}"),
        (3, lambda: f"site:{rng.choice(vocab.hosts).removeprefix('www.')} {term()}"),
        (3, lambda: f"lang:{rng.choice(['en', 'ru', 'pt'])} {term()}"),
        (5, lambda: f"{term()} NEAR/{rng.randint(1, 10)} {term()}"),
        (5, lambda: f"({term()} OR {term()}) {word()} -{word()}"),
    ]
    weights = [w for w, _ in shapes]
    makers = [m for _, m in shapes]
    subs = []
    while len(subs) < count:
        text = rng.choices(makers, weights)[0]()
        try:
            parse_query(text)
        except Exception:  # e.g. a corpus word that is all punctuation: draw again
            continue
        subs.append(text)
    return subs


# --- the naive baseline: one regex per term, every subscription, every article -----------


def _term_regex(term: Term) -> re.Pattern:
    words = [r"\W*".join(map(re.escape, chunk)) for chunk in term.chunks]
    body = r"\W+".join(words)
    tail = r"\w*" if term.prefix else r"\b"
    return re.compile(r"\b" + body + tail)


def naive_compile(queries):
    """Each query becomes a function of (folded title, folded text, meta) -> bool."""

    def build(node):
        if isinstance(node, Term):
            pattern = _term_regex(node)
            if node.field == "title":
                return lambda t, x, m: pattern.search(t) is not None
            return lambda t, x, m: pattern.search(t) is not None or pattern.search(x) is not None
        if isinstance(node, Meta):
            key = node.key
            return lambda t, x, m: key in m
        if isinstance(node, Not):
            inner = build(node.child)
            return lambda t, x, m: not inner(t, x, m)
        if isinstance(node, And):
            parts = [build(c) for c in node.children]
            return lambda t, x, m: all(p(t, x, m) for p in parts)
        if isinstance(node, Or):
            parts = [build(c) for c in node.children]
            return lambda t, x, m: any(p(t, x, m) for p in parts)
        if isinstance(node, Near):  # approximated as AND: cheaper than the real thing
            left, right = build(node.left), build(node.right)
            return lambda t, x, m: left(t, x, m) and right(t, x, m)
        raise TypeError(node)

    return [build(q.root) for q in queries]


def naive_match(funcs, article):
    title, text = fold_text(article.get("title") or ""), fold_text(article.get("text") or "")
    meta = ArticleIndex({"url": article.get("url"), "language": article.get("language")}).meta
    return sum(1 for f in funcs if f(title, text, meta))


# --- running -----------------------------------------------------------------------------


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(matcher, articles):
    """Wall and CPU milliseconds per article, candidates and matches per article."""
    for a in articles[:5]:  # warm caches
        matcher.match(a)
    gc.collect()
    wall, cpu, cands, matches = [], [], [], []
    for a in articles:
        cands.append(len(matcher.candidates(ArticleIndex(a))))
        c0, t0 = time.thread_time(), time.perf_counter()
        result = matcher.match(a)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        matches.append(len(result))
    return wall, cpu, cands, matches


def compile_subscriptions(subs):
    """Parse and compile; times are ``(wall, CPU)`` pairs in seconds."""
    c0, t0 = time.thread_time(), time.perf_counter()
    parsed = [parse_query(s) for s in subs]
    t_parse = (time.perf_counter() - t0, time.thread_time() - c0)
    rss0 = rss_mb()
    c0, t0 = time.thread_time(), time.perf_counter()
    matcher = Matcher()
    for i, q in enumerate(parsed):
        matcher.add(f"sub{i:06d}", q)
    t_compile = (time.perf_counter() - t0, time.thread_time() - c0)
    return parsed, matcher, t_parse, t_compile, rss_mb() - rss0


def stage_cpu(matcher, articles):
    """Median CPU ms per article of the stages of ``match``: tokenising the article
    (``ArticleIndex``), computing its keys, finding the candidates."""
    tokenise, present, cands = [], [], []
    for a in articles:
        c0 = time.thread_time()
        art = ArticleIndex(a)
        c1 = time.thread_time()
        keys_ = matcher._present_keys(art)
        c2 = time.thread_time()
        matcher._candidates(*keys_)  # what match() does: no id sets
        c3 = time.thread_time()
        tokenise.append((c1 - c0) * 1000)
        present.append((c2 - c1) * 1000)
        cands.append((c3 - c2) * 1000)
    return statistics.median(tokenise), statistics.median(present), statistics.median(cands)


def scenario_rows(label, subs, articles):
    parsed, matcher, t_parse, t_compile, rss = compile_subscriptions(subs)
    wall, cpu, cands, matches = measure(matcher, articles)
    t_index, t_keys, t_cands = stage_cpu(matcher, articles)
    rows = [
        (f"[{label}] parse {len(subs):,} subscriptions", f"{t_parse[0]:.1f} s", f"CPU {t_parse[1]:.1f} s"),
        (
            f"[{label}] compile Matcher",
            f"{t_compile[0]:.1f} s",
            f"CPU {t_compile[1]:.1f} s; {matcher.index_size():,} index keys, peak RSS +{rss:.0f} MB",
        ),
        (f"[{label}] match 1 article: median", f"{statistics.median(wall):.2f} ms", f"CPU {statistics.median(cpu):.2f} ms"),
        (f"[{label}] match 1 article: p95", f"{percentile(wall, 0.95):.2f} ms", f"CPU {percentile(cpu, 0.95):.2f} ms"),
        (f"[{label}] match 1 article: max", f"{max(wall):.2f} ms", f"CPU {max(cpu):.2f} ms"),
        (
            f"[{label}]   of which (CPU medians)",
            "",
            f"tokenise {t_index:.2f} ms, keys {t_keys:.2f} ms, candidates {t_cands:.2f} ms; "
            "the rest: checking candidates, results",
        ),
        (f"[{label}] candidates / article: median", f"{statistics.median(cands):,.0f}", f"p95 {percentile(cands, 0.95):,}"),
        (f"[{label}] matches / article: median", f"{statistics.median(matches):,.0f}", f"p95 {percentile(matches, 0.95):,}"),
    ]
    return parsed, rows


def naive_rows(label, parsed, articles, naive_subs):
    naive_n = min(naive_subs, len(parsed))
    funcs = naive_compile(parsed[:naive_n])
    times = []
    for a in articles:
        t0 = time.perf_counter()
        naive_match(funcs, a)
        times.append((time.perf_counter() - t0) * 1000)
    scale = len(parsed) / naive_n
    med = statistics.median(times)
    return [
        (f"[{label}] naive regex loop, {naive_n:,} subs: median", f"{med:.1f} ms", f"measured on {len(times)} articles"),
        (f"[{label}] naive regex loop, {naive_n:,} subs: p95", f"{percentile(times, 0.95):.1f} ms", ""),
        (
            f"[{label}] naive regex loop, {len(parsed):,} subs: median",
            f"{med * scale:,.0f} ms",
            f"EXTRAPOLATED x{scale:.0f} from {naive_n:,} subs (linear)",
        ),
    ]


def print_rows(rows, header=False):
    """Print rows as they come (fixed widths), so a long run shows progress."""
    if header:
        print(f"{'measure':<48}  {'value':>10}  note")
        print(f"{'-' * 48}  {'-' * 10}  {'-' * 4}")
    for name, value, note in rows:
        print(f"{name:<48}  {value:>10}  {note}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--naive-subs", type=int, default=2_000)
    ap.add_argument("--naive-articles", type=int, default=20)
    ap.add_argument("--novel", type=float, default=0.95, help="share of made-up terms in the wide scenario")
    ap.add_argument("--quick", action="store_true", help="only the wide scenario at full size")
    args = ap.parse_args(argv)

    pages = load_corpus()
    # held-out: subscriptions from the vocabulary of half the pages, articles from the other half
    known, unseen = pages[0::2], pages[1::2]
    articles = make_articles(unseen, args.articles)
    vocab = Vocabulary(known)
    sizes = [len(a["text"].encode("utf-8")) for a in articles]
    print(
        f"{args.articles} articles of median {statistics.median(sizes) / 1000:.1f} KB "
        f"({statistics.median(len(tokenize(a['text']).tokens) for a in articles):.0f} words), cut from 30 real pages; "
        f"subscriptions from the vocabulary of 30 other pages ({len(vocab.entities):,} names, "
        f"{len(vocab.words):,} words, {len(vocab.phrases):,} phrases).\n"
        f"wide: {args.novel:.0%} of terms are made-up two-name phrases (the long tail nobody mentions today);\n"
        "dense: every term from the real vocabulary, so ~4,000 distinct terms shared by all subscriptions (pessimistic).\n"
        f"Load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
        "(wall times include waiting for the CPU; CPU column is this thread's own time)\n"
    )
    print_rows([], header=True)
    t0, w0 = time.thread_time(), time.perf_counter()
    x = 0
    for i in range(5_000_000):
        x += i
    print_rows([("machine speed: 5M-step Python loop", f"{time.thread_time() - t0:.2f} s",
                 f"CPU ({time.perf_counter() - w0:.2f} s wall); compare to run figures elsewhere")])
    wide = generate_subscriptions(vocab, args.subs, novel=args.novel)
    if not args.quick:
        small = max(1, args.subs // 10)
        print_rows(scenario_rows(f"wide {small // 1000}k", wide[:small], articles)[1])
    parsed, wide_rows = scenario_rows(f"wide {args.subs // 1000}k", wide, articles)
    print_rows(wide_rows)
    print_rows(naive_rows(f"wide {args.subs // 1000}k", parsed, articles[: args.naive_articles], args.naive_subs))
    del parsed, wide
    if not args.quick:
        dense = generate_subscriptions(vocab, args.subs, seed=SEED + 1)
        print_rows(scenario_rows(f"dense {args.subs // 1000}k", dense, articles)[1])

if __name__ == "__main__":
    main()
