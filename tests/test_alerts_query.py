"""The query language: semantics table, error table, the seed page, normal forms."""

import json
import tomllib
from pathlib import Path

import pytest

from crawler.alerts.matcher import find_spans, match_query
from crawler.alerts.query import And, Not, Or, Term, parse_query
from crawler.exceptions import QueryError

DATA = Path(__file__).parent / "data" / "queries"
CASES = tomllib.loads((DATA / "semantics.toml").read_text("utf-8"))["case"]
ERRORS = tomllib.loads((DATA / "errors.toml").read_text("utf-8"))["error"]
SEED = json.loads((Path(__file__).parent / "data" / "seed" / "seed-page.expected.json").read_text("utf-8"))
ARTICLE_KEYS = ("title", "text", "url", "language", "site_name", "source", "feed_url")


def article_of(case: dict) -> dict:
    return {key: case[key] for key in ARTICLE_KEYS if key in case}


def seed_article() -> dict:
    return {
        "title": SEED["title"],
        "text": "\n\n".join(SEED["paragraphs"]),
        "url": SEED["url"],
        "language": SEED["language"],
        "site_name": SEED["site_name"],
    }


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['query']}" for i, c in enumerate(CASES)])
def test_semantics(case):
    terms = match_query(case["query"], article_of(case))
    assert (terms is not None) == case["match"], case.get("note", "")
    if "terms" in case:
        assert terms == case["terms"]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{i}:{c['query']}" for i, c in enumerate(ERRORS)])
def test_errors(case):
    with pytest.raises(QueryError) as info:
        parse_query(case["query"])
    assert case["message"] in info.value.bare_message
    assert info.value.position == case["position"]
    assert info.value.query == case["query"]
    # the full message points at the position under the query
    if case["query"]:
        lines = str(info.value).splitlines()
        assert lines[-1].index("^") - 2 == case["position"]


@pytest.mark.parametrize("query", SEED["keywords_that_match"])
def test_seed_page_matches(query):
    assert match_query(query, seed_article())


@pytest.mark.parametrize("query", SEED["keywords_that_do_not_match"])
def test_seed_page_does_not_match(query):
    assert match_query(query, seed_article()) is None


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['query']}" for i, c in enumerate(CASES)])
def test_normal_form_parses_back_to_the_same_query(case):
    query = parse_query(case["query"])
    again = parse_query(str(query))
    assert again == query
    assert str(again) == str(query)
    assert (match_query(again, article_of(case)) is not None) == case["match"]


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Kim  Jong-Un", "kim AND jong-un"),
        ('"Security Council"', '"security council"'),
        ("a OR b c", "a OR (b AND c)"),
        ("(a OR b) -c", "(a OR b) AND NOT c"),
        ("NOT (a b) c", "NOT (a AND b) AND c"),
        ("title:(Putin OR Kim) site:www.LeMonde.fr LANG:EN", "(title:putin OR title:kim) AND site:www.lemonde.fr AND lang:en"),
        ('sanction* NEAR/5 "North Korea"', 'sanction* NEAR/5 "north korea"'),
        ('site:"Le Monde"', 'site:"le monde"'),
        ("Corée", "coree"),
        ("AT&T", '"at t"'),
    ],
)
def test_normal_form(text, normal):
    assert str(parse_query(text)) == normal


def test_tree_shape_and_precedence():
    root = parse_query("a OR NOT b c").root
    assert isinstance(root, Or)
    left, right = root.children
    assert isinstance(left, Term) and left.chunks == (("a",),)
    assert isinstance(right, And) and isinstance(right.children[0], Not)


def test_terms_are_reported_as_written_without_repeats():
    query = parse_query('Kim OR kim OR "Security Council" OR site:LeMonde.fr -NATO')
    assert [t.display for t in query.terms()] == ["Kim", "Security Council", "site:LeMonde.fr"]


def test_query_error_is_a_config_error():
    from crawler.exceptions import ConfigError

    with pytest.raises(ConfigError):
        parse_query("(")


def test_pathological_input_is_fast_enough_to_finish():
    # no backtracking: a long text of near misses and a long query both finish at once
    text = "a " * 5000 + "b"
    assert match_query('"a a a a a a a a a a a a a a a a a a a a a b"', {"text": text})
    assert match_query("a NEAR/1000 b", {"text": text})
    assert match_query("c NEAR/1000 a", {"text": text}) is None
    long_query = " OR ".join(f"word{i}" for i in range(2000))
    assert match_query(long_query, {"text": "word1999"}) == ["word1999"]


def test_find_spans_in_the_original_text():
    text = "North Korea’s Kim Jong-un met KIM Jong Un; sanctions, Sanctioned. crisis"
    spans = find_spans('"kim jong-un" OR sanction* OR isis', text)
    assert [text[s:e] for s, e in spans] == ["Kim Jong-un", "KIM Jong Un", "sanctions", "Sanctioned"]


def test_find_spans_accents_and_title_scope():
    text = "La Corée du Nord"
    assert [text[s:e] for s, e in find_spans("coree", text)] == ["Corée"]
    assert find_spans("title:coree", text) == []
    assert [text[s:e] for s, e in find_spans("title:coree", text, field="title")] == ["Corée"]
    assert find_spans("coree -nord", "Corée") == [(0, 5)]  # negated terms are not highlighted


# --- the shared folding and tokenisation ----------------------------------------------------

from crawler.alerts.text import fold_token, tokenize  # noqa: E402


@pytest.mark.parametrize(
    ("word", "folded"),
    [("Corée", "coree"), ("STRAẞE", "strasse"), ("Øresund", "oresund"), ("Łódź", "lodz"),
     ("ΑΘΉΝΑ", "αθηνα"), ("Москве", "москве"), ("ﬁnance", "finance"), ("Ｇ７", "g7"), ("İstanbul", "istanbul")],
)
def test_fold_token(word, folded):
    assert fold_token(word) == folded


def test_tokenize_words_compounds_and_spans():
    text = "Kim Jong-un’s U.S. trip; 北朝鮮, e\u0301te\u0301"
    toks = tokenize(text, with_spans=True)
    assert toks.tokens == ["kim", "jong", "un", "s", "u", "s", "trip", "北", "朝", "鮮", "ete"]
    assert toks.compounds == [(1, 3, "jonguns"), (4, 5, "us")]
    assert [text[s:e] for s, e in toks.spans][:3] == ["Kim", "Jong", "un"]
    assert text[slice(*toks.spans[-1])] == "e\u0301te\u0301"


# --- the fast paths give what the general code gives ------------------------------------

_JOIN_CHARS = ["-", "\u2010", "\u00ad", "'", "\u2019", ".", " ", ", ", ". ", " - ", "\u200d", "_", "\t"]
_WORDS = ["kim", "Jong", "un", "U", "S", "N", "e", "mail", "3", "5", "Corée", "Москва", "北", "x"]


def _reference_joined_at(raw, seps):
    """The per-separator definition the tokeniser's C-loop search must agree with."""
    from crawler.alerts.text import JOINERS

    def joins(i, sep):
        if len(sep) != 1:
            return False
        if sep in JOINERS:
            return True
        return sep == "." and len(raw[i]) == 1 and len(raw[i + 1]) == 1 and raw[i].isalpha() and raw[i + 1].isalpha()

    return [i for i, sep in enumerate(seps) if joins(i, sep)]


def test_joiner_search_agrees_with_the_per_separator_rule():
    import random

    from crawler.alerts.text import _joined_at, split_words

    rng = random.Random(11)
    joined = 0
    for _ in range(400):
        text = "".join(rng.choice(_WORDS) + rng.choice(_JOIN_CHARS) for _ in range(rng.randint(1, 12)))
        parts = split_words(text)
        raw, seps = parts[1::2], parts[2:-1:2]
        expected = _reference_joined_at(raw, seps)
        assert _joined_at(raw, seps) == expected, text
        joined += len(expected)
    assert joined > 500  # the comparison is not vacuous


def test_plain_ascii_words_are_chunked_like_any_other_text():
    import random

    from crawler.alerts.query import _chunks
    from crawler.alerts.text import tokenize

    def reference(raw):
        words = tokenize(raw)
        runs = dict(words.runs)
        chunks, i = [], 0
        while i < len(words.tokens):
            end = runs.get(i, i)
            chunks.append(tuple(words.tokens[i : end + 1]))
            i = end + 1
        return tuple(chunks)

    rng = random.Random(5)
    pieces = ["Kim", "jong", "UN", "x1", "2024", "e-mail", "U.S.", "a_b", "don't", "\x1c", " ", "  ", "\t", "é", "-"]
    for _ in range(500):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        assert _chunks.__wrapped__(raw) == reference(raw), repr(raw)


def test_whole_text_tokeniser_agrees_with_the_word_by_word_one():
    import random

    from crawler.alerts.text import _tokenize_fast, _tokenize_general

    pieces = [
        "Kim", "jong", "UN", "x1", "2024", "e-mail", "U.S.", "u.s", "a", "I", "a_b", "don't", "\x1c", " ", "  ",
        "\t", "é", "É", "-", "--", ".", "..", ". ", "'", "’", "‘", "“", "—", "\xa0", "\xad", "\u200d", "ß", "Ǆ",
        "²", "½", "ﬁ", "Москва", "İ", "ø", ",", "_", "e\u0301", "北", "\ud800", "ʼ", "′", "″", "🙂", "ª", "3.5",
    ]
    rng = random.Random(3)
    fast = compounds = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        found = _tokenize_fast(text)
        if found is None:  # marks, CJK, surrogates: left to the general code
            continue
        expected = _tokenize_general(text)
        assert (found.tokens, found.compounds, found.runs) == (expected.tokens, expected.compounds, expected.runs), repr(text)
        fast += 1
        compounds += len(found.compounds)
    assert fast > 10_000 and compounds > 5_000  # the comparison is not vacuous
