"""The Matcher answers exactly what evaluating each query alone answers."""

import random
import tomllib
from pathlib import Path

import pytest

from crawler.alerts.matcher import Matcher, match_query
from crawler.alerts.query import parse_query
from crawler.exceptions import QueryError

DATA = Path(__file__).parent / "data" / "queries"
CASES = tomllib.loads((DATA / "semantics.toml").read_text("utf-8"))["case"]
ARTICLE_KEYS = ("title", "text", "url", "language", "site_name", "source", "feed_url")


def article_of(case: dict) -> dict:
    return {key: case[key] for key in ARTICLE_KEYS if key in case}


def one_by_one(queries: dict, article: dict) -> dict[str, list[str]]:
    """Each query evaluated alone, with its own tokenisation of the article."""
    found = {}
    for name, query in sorted(queries.items()):
        terms = match_query(query, article)
        if terms is not None:
            found[name] = terms
    return found


def test_every_table_query_together_on_every_table_article():
    queries = {f"q{i:03d}": case["query"] for i, case in enumerate(CASES)}
    matcher = Matcher(queries)
    for i, case in enumerate(CASES):
        article = article_of(case)
        got = matcher.match(article)
        assert got == one_by_one(queries, article), case["query"]
        assert (f"q{i:03d}" in got) == case["match"], case["query"]


# --- generated queries and texts ---------------------------------------------------------

WORDS = [
    "putin", "kim", "jong", "un", "jong-un", "korea", "corée", "coree", "sanctions",
    "sanctioned", "security", "council", "nato", "eu", "iran", "the", "of", "a",
    "e-mail", "email", "u.s.", "us", "москва", "αθήνα", "北", "朝", "鮮", "dinner", "peskov",
]
PREFIXES = ["sanction*", "kor*", "co*", "jong-u*", "моск*", "pe*"]
SITES = ["site:lemonde.fr", "site:fr", "site:example", 'site:"le monde"', "lang:en", "lang:fr", "source:reuters"]


def random_term(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(WORDS)
    if roll < 0.6:
        return '"' + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 3))) + '"'
    if roll < 0.7:
        return rng.choice(PREFIXES)
    if roll < 0.78:
        return rng.choice(SITES)
    if roll < 0.84:
        return "title:" + rng.choice(WORDS)
    if roll < 0.92:
        return f"{rng.choice(WORDS)} NEAR/{rng.randint(0, 4)} {rng.choice(WORDS + PREFIXES)}"
    if depth < 2:
        return "(" + random_query(rng, depth + 1) + ")"
    return rng.choice(WORDS)


def random_query(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for i in range(rng.randint(1, 4)):
        term = random_term(rng, depth)
        if i and rng.random() < 0.25:
            term = rng.choice(["-", "NOT "]) + term
        if parts:
            parts.append(rng.choice(["", "", "AND", "OR", "OR"]))
        parts.append(term)
    return " ".join(p for p in parts if p)


def random_article(rng: random.Random) -> dict:
    spellings = WORDS + ["Jong-un", "Kim", "Jongun", "COREE", "Sanctions", "U.S", "E-mail", "Москве", "Αθήνα", "crisis"]
    text = " ".join(rng.choice(spellings) + rng.choice(["", "", "", ",", ".", "’s"]) for _ in range(rng.randint(0, 40)))
    title = " ".join(rng.choice(spellings) for _ in range(rng.randint(0, 6)))
    return {
        "title": title,
        "text": text,
        "url": rng.choice(["https://www.lemonde.fr/a", "https://example.org/b", "https://news.example.co.uk/c", ""]),
        "language": rng.choice(["en", "fr", "en-GB", None]),
        "site_name": rng.choice(["Le Monde", "Example News", None]),
        "source": rng.choice(["Reuters World", "BBC", None]),
    }


def generated_queries(seed: int, count: int) -> dict[str, str]:
    rng = random.Random(seed)
    queries = {}
    while len(queries) < count:
        text = random_query(rng)
        try:
            parse_query(text)
        except QueryError:
            continue  # e.g. "a OR -b": refused, as it should be
        queries[f"sub{len(queries):04d}"] = text
    return queries


def test_generated_queries_together_equal_each_alone():
    queries = generated_queries(seed=20231, count=300)
    matcher = Matcher(queries)
    parsed = {name: parse_query(q) for name, q in queries.items()}
    rng = random.Random(7)
    matched = 0
    for _ in range(40):
        article = random_article(rng)
        got = matcher.match(article)
        assert got == one_by_one(parsed, article), article
        matched += len(got)
    assert matched > 1000  # the comparison is not vacuous


def test_removing_and_replacing_queries():
    queries = {name: parse_query(q) for name, q in generated_queries(seed=99, count=300).items()}
    matcher = Matcher(queries)
    rng = random.Random(3)
    removed = sorted(queries)[::2]
    for name in removed:
        matcher.remove(name)
    kept = {name: q for name, q in queries.items() if name not in removed}
    for name in sorted(kept)[:50]:  # replace under the same name
        kept[name] = "putin OR kim"
        matcher.add(name, "putin OR kim")
    assert len(matcher) == len(kept)
    for _ in range(30):
        article = random_article(rng)
        assert matcher.match(article) == one_by_one(kept, article)
    for name in list(kept):
        matcher.remove(name)
    assert not matcher._post and not matcher._pairs and not matcher._answers and not matcher._pair_answers
    assert not matcher._prefix_lengths and not matcher._bigram_firsts and not matcher._bigram_seconds


def test_results_are_sorted_by_name_and_terms_follow_the_query():
    matcher = Matcher()
    matcher.add("zeta", "sanctions OR kim")
    matcher.add("alpha", parse_query('"Kim Jong-un" putin'))
    matcher.add("mid", "nato")
    got = matcher.match({"title": "Putin meets Kim Jong Un", "text": "New sanctions loom."})
    assert list(got) == ["alpha", "zeta"]
    assert got["zeta"] == ["sanctions", "kim"]
    assert got["alpha"] == ["Kim Jong-un", "putin"]


def test_add_refuses_a_malformed_query_and_keeps_the_rest():
    matcher = Matcher({"ok": "putin"})
    with pytest.raises(QueryError):
        matcher.add("bad", "putin (kim")
    assert "bad" not in matcher and len(matcher) == 1
    assert matcher.match({"text": "Putin"}) == {"ok": ["putin"]}


def test_explain_gives_spans_in_the_original_text():
    matcher = Matcher({"kim": 'title:"kim jong-un" OR sanction* NEAR/3 Корея'})
    article = {"title": "Putin meets KIM Jong‑un", "text": "Санкции? No: sanctions against Корея, and sanctioned banks."}
    explained = matcher.explain("kim", article)
    assert explained["terms"] == ["kim jong-un", "sanction*", "Корея"]
    assert [article["title"][s:e] for s, e in explained["title"]] == ["KIM Jong‑un"]
    assert [article["text"][s:e] for s, e in explained["text"]] == ["sanctions", "Корея", "sanctioned"]
    assert matcher.explain("kim", {"title": "", "text": "nothing"}) is None


def test_an_empty_matcher_and_an_empty_article():
    assert Matcher().match({"title": "x", "text": "y"}) == {}
    assert Matcher({"a": "putin"}).match({}) == {}


@pytest.mark.parametrize(
    ("query", "text"),
    [("russia -sanction*", "Russia faces sanctions."), ('russia -"united nations"', "Russia told the United Nations.")],
)
def test_a_negated_prefix_or_phrase_alone_in_the_matcher(query, text):
    # the article must compute the keys of negated terms even when no other query indexes them
    matcher = Matcher({"q": query})
    assert matcher.match({"text": text}) == {}
    assert matcher.match({"text": "Russia."}) == {"q": ["russia"]}


def test_many_required_terms_and_a_language_all_checked():
    # more required clauses than the index holds, and a lang: clause that is not indexed
    matcher = Matcher({"q": 'lang:en alpha beta gamma delta "epsilon zeta" -omega'})
    full = {"text": "alpha beta gamma delta epsilon zeta", "language": "en"}
    assert matcher.match(full) == {"q": ["lang:en", "alpha", "beta", "gamma", "delta", "epsilon zeta"]}
    assert matcher.match({**full, "language": "fr"}) == {}
    assert matcher.match({**full, "text": "alpha beta gamma delta epsilon"}) == {}
    assert matcher.match({**full, "text": "alpha beta gamma epsilon zeta"}) == {}
    assert matcher.match({**full, "text": full["text"] + " omega"}) == {}


def test_a_term_whose_keys_no_indexed_clause_holds_is_still_found():
    # "beta gamma" is neither the indexed clause nor checked as a required clause: the
    # article must still compute it, or the shortcut "absent: a required key is missing"
    # would drop the phrase before evaluation
    matcher = Matcher({"q": '"alpha beta gamma" OR zeta'})
    assert matcher.match({"text": "Alpha beta gamma."}) == {"q": ["alpha beta gamma"]}
    assert matcher.match({"text": "alpha beta delta gamma"}) == {}
    assert matcher.match({"text": "zeta"}) == {"q": ["zeta"]}


def test_queries_sharing_a_key_and_a_query_with_clauses_not_indexed():
    matcher = Matcher({"a": "putin", "b": "putin kim", "c": "putin -kim", "d": '"kim jong-un" NEAR/2 putin'})
    assert matcher.match({"text": "Putin met Kim Jong Un."}) == {"a": ["putin"], "b": ["putin", "kim"], "d": ["kim jong-un", "putin"]}
    assert matcher.match({"text": "Putin alone."}) == {"a": ["putin"], "c": ["putin"]}
    assert matcher.match({"text": "Kim alone."}) == {}
    matcher.remove("a")
    assert matcher.match({"text": "Putin alone."}) == {"c": ["putin"]}
