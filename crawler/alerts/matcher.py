"""Match many alert queries against one article at a time.

:class:`Matcher` compiles every query into a few *required clauses*: sets of keys of
which at least one must be present in an article for the query to possibly match (a
word, a ``"word word"`` bigram for phrases, a ``prefix*``, a ``site:host``…). Each
query is filed under the keys of its rarest-looking clause. To match an article it is
tokenised once; its keys are intersected with the index (a C set operation), the
candidate queries are those whose indexed clause hit and whose other clauses have a
key in the article too, and only those candidates are evaluated against the
article's word positions. Queries whose clauses say everything (plain words and ORs
of them) skip the evaluation, and so do the terms of the others whose presence the
article's keys already tell.

Cost therefore grows with the article and with the number of candidates, not with the
number of queries; every evaluation step is linear or ``n log n`` in the article's
length (no regular expression is built from user input).
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import Counter
from collections.abc import Mapping, Set
from urllib.parse import urlsplit

from crawler.alerts.query import And, Meta, Near, Node, Not, Or, Query, Term, parse_query
from crawler.alerts.text import Tokens, tokenize

logger = logging.getLogger(__name__)

_MAX_NAME_WORDS = 6


# --- the article side ------------------------------------------------------------------


class _Field:
    """The words of one field (title or text) with lazily built position lists."""

    __slots__ = ("tokens", "compounds", "spans", "words", "_pos", "_comp_at", "_comp_pos", "_sorted")

    def __init__(self, toks: Tokens):
        self.tokens = toks.tokens
        self.compounds = toks.compounds
        self.spans = toks.spans
        self.words = set(self.tokens)
        self.words.update(joined for _, _, joined in self.compounds)
        self._pos = None
        self._comp_at = None
        self._sorted = None

    def with_prefix(self, prefix: str) -> list[str]:
        """The distinct words (plain or compound) that start with ``prefix``."""
        if self._sorted is None:
            self._sorted = sorted(self.words)
        words = self._sorted
        i = bisect.bisect_left(words, prefix)
        found = []
        while i < len(words) and words[i].startswith(prefix):
            found.append(words[i])
            i += 1
        return found

    def _build(self):
        comp_at: dict[int, list[tuple[str, int]]] = {}
        comp_pos: dict[str, list[tuple[int, int]]] = {}
        for start, end, joined in self.compounds:
            comp_at.setdefault(start, []).append((joined, end))
            comp_pos.setdefault(joined, []).append((start, end))
        self._pos, self._comp_at, self._comp_pos = {}, comp_at, comp_pos

    def positions(self, word: str) -> list[int]:
        """Where the plain word ``word`` stands (found on demand with C-speed scans)."""
        found = self._pos.get(word)
        if found is None:
            found = []
            if word in self.words:
                index, i = self.tokens.index, -1
                try:
                    while True:
                        i = index(word, i + 1)
                        found.append(i)
                except ValueError:
                    pass
            self._pos[word] = found
        return found

    def occurrences(self, word: str, prefix: bool) -> list[tuple[int, int]]:
        """``(start, end)`` word positions where ``word`` (or a word it prefixes) stands."""
        if self._pos is None:
            self._build()
        if not prefix:
            found = [(i, i) for i in self.positions(word)]
            found.extend(self._comp_pos.get(word, ()))
        else:
            found = []
            for w in self.with_prefix(word):
                found.extend((i, i) for i in self.positions(w))
                found.extend(self._comp_pos.get(w, ()))
        if len(found) > 1:
            found.sort()
        return found

    def starting_at(self, position: int):
        """The words (plain or compound) that start at ``position``, as ``(word, end)``."""
        if self._pos is None:
            self._build()
        if position < len(self.tokens):
            yield self.tokens[position], position
            yield from self._comp_at.get(position, ())

    def bigrams(self, firsts: Set[str], seconds: Set[str]) -> set[str]:
        """``"a b"`` keys for adjacent words (plain or compound) whose first word is in
        ``firsts``; of the plain pairs, only those whose second word is in ``seconds``."""
        wanted = self.words & firsts
        if not wanted:
            return set()
        toks = self.tokens
        after = self.words & seconds
        keys = {a + " " + b for a, b in zip(toks, itertools.islice(toks, 1, None)) if a in wanted and b in after}
        if self.compounds:
            starts = {}
            for start, end, joined in self.compounds:
                starts.setdefault(start, []).append(joined)
            for start, end, joined in self.compounds:
                if start > 0 and toks[start - 1] in wanted:
                    keys.add(toks[start - 1] + " " + joined)
                if joined in wanted:
                    if end + 1 < len(toks):
                        keys.add(joined + " " + toks[end + 1])
                    for other in starts.get(end + 1, ()):
                        keys.add(joined + " " + other)
        return keys


_HOST_KEYS: dict[tuple[str, str], frozenset[str]] = {}  # (scope, host) -> keys; articles share hosts


def _host_keys(scope: str, url: str) -> frozenset[str]:
    host = (urlsplit(url).hostname or "") if "://" in url else url.split("/", 1)[0]
    host = host.strip(".").lower()
    if not host:
        return frozenset()
    keys = _HOST_KEYS.get((scope, host))
    if keys is None:
        if len(_HOST_KEYS) >= 50_000:
            _HOST_KEYS.clear()
        labels = host.split(".")
        keys = {f"{scope}:" + ".".join(labels[i:]) for i in range(len(labels))}
        keys.update(f"{scope}:" + " ".join(tokenize(label).tokens) for label in labels)
        keys = _HOST_KEYS[(scope, host)] = frozenset(keys)
    return keys


def _name_keys(scope: str, name: str) -> set[str]:
    words = tokenize(name).tokens
    keys = set()
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + _MAX_NAME_WORDS) + 1):
            keys.add(f"{scope}:" + " ".join(words[i:j]))
            keys.add(f"{scope}:" + "".join(words[i:j]))
    return keys


def _meta_keys(article: Mapping) -> set[str]:
    keys: set[str] = set()
    if url := article.get("url"):
        keys |= _host_keys("site", str(url))
    if site_name := article.get("site_name"):
        keys |= _name_keys("site", str(site_name))
    if language := article.get("language"):
        language = str(language).strip().lower().replace("_", "-")
        keys.add("lang:" + language)
        keys.add("lang:" + language.split("-", 1)[0])
    if source := article.get("source"):
        source = str(source)
        keys |= _host_keys("source", source) if "://" in source else _name_keys("source", source)
    if feed_url := article.get("feed_url") or article.get("source_feed"):
        keys |= _host_keys("source", str(feed_url))
    return keys


class ArticleIndex:
    """One article, tokenised once: its title and text fields and metadata keys."""

    __slots__ = ("title", "text", "meta", "memo")

    def __init__(self, article: Mapping, with_spans: bool = False):
        self.memo: dict[int, bool] = {}  # id(term) -> present; valid while the terms live
        self.title = _Field(tokenize(article.get("title") or "", with_spans))
        self.text = _Field(tokenize(article.get("text") or "", with_spans))
        self.meta = _meta_keys(article)

    def fields(self, term_field: str | None) -> tuple[_Field, ...]:
        return (self.title,) if term_field == "title" else (self.title, self.text)


# --- evaluating one query ---------------------------------------------------------------


def _term_occurrences(term: Term, fld: _Field) -> list[tuple[int, int]]:
    found = set()
    for alt in term.alternatives:
        last = len(alt) - 1
        for start, end in fld.occurrences(alt[0], term.prefix and last == 0):
            ends = [end]
            for k in range(1, len(alt)):
                want, is_prefix = alt[k], term.prefix and k == last
                ends = [
                    e2
                    for e in ends
                    for word, e2 in fld.starting_at(e + 1)
                    if word == want or (is_prefix and word.startswith(want))
                ]
                if not ends:
                    break
            found.update((start, e) for e in ends)
    return sorted(found)


def _term_in_field(term: Term, fld: _Field) -> bool:
    if len(term.chunks) == 1 and len(term.chunks[0]) == 1:
        word = term.chunks[0][0]
        return bool(fld.with_prefix(word)) if term.prefix else word in fld.words
    return bool(_term_occurrences(term, fld))


def _term_present(term: Term | Meta, art: ArticleIndex) -> bool:
    if isinstance(term, Meta):
        return term.key in art.meta
    memo = art.memo
    found = memo.get(id(term))
    if found is None:
        found = memo[id(term)] = any(_term_in_field(term, fld) for fld in art.fields(term.field))
    return found


def _operand_occurrences(node: Node, fld: _Field, art: ArticleIndex) -> list[tuple[int, int]]:
    terms = node.children if isinstance(node, Or) else (node,)
    found = []
    for term in terms:
        if fld in art.fields(term.field):
            found.extend(_term_occurrences(term, fld))
    found.sort()
    return found


def _near(a: list[tuple[int, int]], b: list[tuple[int, int]], distance: int) -> bool:
    """True if an occurrence in ``a`` and one in ``b`` have at most ``distance`` words between them."""
    starts = [s for s, _ in b]  # b is sorted by start
    ends = sorted(e for _, e in b)
    for s, e in a:
        i = bisect.bisect_left(starts, e + 1)  # b after a
        if i < len(starts) and starts[i] <= e + 1 + distance:
            return True
        i = bisect.bisect_left(ends, s - 1 - distance)  # b before a
        if i < len(ends) and ends[i] <= s - 1:
            return True
    return False


def evaluate(node: Node, art: ArticleIndex) -> bool:
    """Does the query tree ``node`` match the indexed article?"""
    if isinstance(node, (Term, Meta)):
        return _term_present(node, art)
    if isinstance(node, And):
        return all(evaluate(child, art) for child in node.children)
    if isinstance(node, Or):
        return any(evaluate(child, art) for child in node.children)
    if isinstance(node, Not):
        return not evaluate(node.child, art)
    if isinstance(node, Near):
        for fld in (art.title, art.text):
            a = _operand_occurrences(node.left, fld, art)
            if a and _near(a, _operand_occurrences(node.right, fld, art), node.distance):
                return True
        return False
    raise TypeError(f"unknown query node {node!r}")  # pragma: no cover


def matched_terms(query: Query, art: ArticleIndex) -> list[str]:
    """The query's positive terms found in the article, as written in the query."""
    seen: dict[str, None] = {}
    for term in query.terms():
        if _term_present(term, art):
            seen.setdefault(term.display, None)
    return list(seen)


def _as_query(query: str | Query) -> Query:
    return query if isinstance(query, Query) else parse_query(query)


def match_query(query: str | Query, article: Mapping) -> list[str] | None:
    """Match one query: the matched terms, or None if the article does not match."""
    query = _as_query(query)
    art = ArticleIndex(article)
    if not evaluate(query.root, art):
        return None
    return matched_terms(query, art)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _field_spans(query: Query, fld: _Field, field_name: str) -> list[tuple[int, int]]:
    spans = []
    for term in query.terms():
        if isinstance(term, Term) and term.field in (None, field_name):
            spans.extend((fld.spans[s][0], fld.spans[e][1]) for s, e in _term_occurrences(term, fld))
    return _merge(spans)


def find_spans(query: str | Query, text: str, field: str = "text") -> list[tuple[int, int]]:
    """Character spans in ``text`` of the query's positive terms (for highlighting).

    ``field`` says which field ``text`` is (``"title"`` also highlights ``title:``
    terms). Overlapping spans are merged; the result is sorted.
    """
    fld = _Field(tokenize(text or "", with_spans=True))
    return _field_spans(_as_query(query), fld, field)


# --- many queries at once ---------------------------------------------------------------


def _is_pair(key: str) -> bool:
    return " " in key and ":" not in key


def _key_score(key: str) -> float:
    """A guess at how rare a key is (higher: rarer) to choose which clauses to index."""
    if ":" in key:
        return -50.0 if key.startswith("lang:") else 6.0
    if " " in key:
        return 10.0 + len(key)
    if key.endswith("*"):
        return len(key) - 2.5
    return float(len(key))


def _clause_score(clause: frozenset[str]) -> float:
    return min(map(_key_score, clause)) - 0.5 * (len(clause) - 1)


def _alternative_keys(alt: tuple[str, ...], prefix: bool) -> list[str]:
    if len(alt) == 1:
        return [alt[0] + "*" if prefix else alt[0]]
    pairs = len(alt) - (2 if prefix else 1)
    keys = [alt[i] + " " + alt[i + 1] for i in range(pairs)]
    if prefix:
        keys.append(alt[-1] + "*")
        if not pairs:
            keys.append(alt[0])
    return keys


_TERM_CLAUSES: dict[tuple, tuple[frozenset[str], ...]] = {}  # (chunks, prefix) -> clauses


def _term_clauses(term: Term) -> tuple[frozenset[str], ...]:
    chunks = term.chunks
    if len(chunks) == 1 and len(chunks[0]) == 1:  # one word: the usual case
        word = chunks[0][0]
        return (frozenset((word + "*" if term.prefix else word,)),)
    alts = term.alternatives
    if len(alts) == 1:
        return tuple(frozenset([key]) for key in _alternative_keys(alts[0], term.prefix))
    return (frozenset(max(_alternative_keys(alt, term.prefix), key=_key_score) for alt in alts),)


def required_clauses(node: Node) -> list[frozenset[str]] | None:
    """Clauses (sets of keys) each of which must have a key in an article ``node`` matches.

    None means the node can match without any positive term (a negation).
    """
    if isinstance(node, Meta):
        return [frozenset([node.key])]
    if isinstance(node, Term):
        cache_key = (node.chunks, node.prefix)
        found = _TERM_CLAUSES.get(cache_key)
        if found is None:
            if len(_TERM_CLAUSES) >= 200_000:
                _TERM_CLAUSES.clear()
            found = _TERM_CLAUSES[cache_key] = _term_clauses(node)
        return list(found)
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        return required_clauses(node.left) + required_clauses(node.right)
    parts = [required_clauses(child) for child in node.children]
    if isinstance(node, And):
        clauses = [clause for part in parts if part for clause in part]
        return clauses or None
    if any(part is None for part in parts):  # Or
        return None
    return [frozenset().union(*(max(part, key=_clause_score) for part in parts))]


def _spelling_keys(term: Term) -> tuple[frozenset[str], ...]:
    """For a term with several alternatives, the keys each of them needs (else ())."""
    if len(term.alternatives) < 2:
        return ()
    return tuple(frozenset(_alternative_keys(alt, term.prefix)) for alt in term.alternatives)


def _is_simple(node: Node) -> bool:
    """A term whose presence is exactly "a key of its one clause is present"."""
    if isinstance(node, Meta):
        return True
    if not isinstance(node, Term) or node.field is not None:
        return False
    return all(len(alt) == 1 or (len(alt) == 2 and not node.prefix) for alt in node.alternatives)


def _is_exact(node: Node) -> bool:
    """True when the indexed clauses of ``node`` (plus its negated simple terms) are
    exactly its meaning, so that no evaluation is needed."""
    if _is_simple(node):
        return True
    if isinstance(node, Or):
        return all(_is_simple(child) for child in node.children)
    if isinstance(node, And):
        positive = [child for child in node.children if not isinstance(child, Not)]
        return (
            all(
                _is_simple(child) or isinstance(child, Or) and all(map(_is_simple, child.children))
                for child in positive
            )
            and all(_is_simple(child.child) for child in node.children if isinstance(child, Not))
        )
    return False


def _all_terms(node: Node):
    """Every word/phrase term of the tree, negated or not."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from _all_terms(node.child)
    elif isinstance(node, Near):
        yield from _all_terms(node.left)
        yield from _all_terms(node.right)
    elif isinstance(node, (And, Or)):
        for child in node.children:
            yield from _all_terms(child)


def _simple_keys(term: Term | Meta) -> frozenset[str]:
    (clause,) = required_clauses(term)
    return clause


class _Compiled:
    """One compiled query (slotted: a Matcher holds ~100k of these)."""

    __slots__ = ("qid", "name", "query", "clause", "others", "exact", "term_keys", "neg_keys", "seeds", "direct")

    def __init__(self, qid, name, query, clause, others, exact, term_keys, neg_keys, seeds):
        self.qid = qid
        self.name = name
        self.query = query
        self.clause = clause  # the indexed clause
        self.others = others  # the other required clauses, checked against the article's keys
        self.exact = exact
        self.term_keys = term_keys  # exact queries: (display, keys) of positive terms
        self.neg_keys = neg_keys  # exact queries: keys of negated terms
        # other queries: (id(term), required clauses, simple, alternatives' keys) of each
        # word/phrase term; a term with several spellings ("nano-satellite" is "nano
        # satellite" or "nanosatellite") needs all the keys of one of them
        self.seeds = seeds
        self.direct = None  # the matched term, when the indexed clause is the whole answer


class Matcher:
    """Many named queries compiled together; ``match(article)`` returns the matches.

    The index maps a key to the compiled queries whose indexed clause (the
    rarest-looking of its required clauses) holds it, in two dicts: ``_pairs`` for the
    ``"a b"`` keys of phrases, ``_post`` for the others (words, ``prefix*``, ``site:``…).
    The article's keys are intersected with them and the posting lists merged by set
    operations that run in C. A query so found is a candidate when its other required
    clauses also have a key in the article (``frozenset.isdisjoint``, in C). A query
    whose answer is just "its one term is there" is not in a posting list: its name
    and term are in the key's dict in ``_answers`` (``_pair_answers``), merged into the
    results without any evaluation, or even a look at the compiled query.

    At 100k queries the index is far larger than the CPU caches, and matching one
    article is bound by memory reads more than by instructions. Hence the split: the
    article's few hundred distinct words are looked up in ``_post``, which stays small
    (the long tail of what people follow is phrases), and only the adjacent words that
    can form a key (first word in ``_bigram_firsts``, second in ``_bigram_seconds``) in
    ``_pairs``. Hence also posting lists of the compiled queries themselves, which hash
    by identity: merging them reads no memory, and there is no id table to look up.
    """

    def __init__(self, queries: Mapping[str, str | Query] | None = None):
        self._by_name: dict[str, _Compiled] = {}
        self._post: dict[str, list[_Compiled]] = {}
        self._pairs: dict[str, list[_Compiled]] = {}
        self._answers: dict[str, dict[str, str]] = {}  # key -> {query name: matched term}
        self._pair_answers: dict[str, dict[str, str]] = {}
        self._prefix_lengths: Counter[int] = Counter()
        self._prefixes: Counter[str] = Counter()
        self._prefix_cache: dict[str, tuple[str, ...]] = {}  # word -> prefix keys it has
        self._bigram_firsts: Counter[str] = Counter()  # first words of "a b" keys in use
        self._bigram_seconds: Counter[str] = Counter()  # and their second words
        self._next_id = 0
        for name, query in (queries or {}).items():
            self.add(name, query)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def query(self, name: str) -> Query:
        return self._by_name[name].query

    def index_size(self) -> int:
        """How many distinct keys the index holds."""
        return len(self._post.keys() | self._answers.keys()) + len(self._pairs.keys() | self._pair_answers.keys())

    def add(self, name: str, query: str | Query) -> Query:
        """Add (or replace) the query called ``name``; raise QueryError if it does not parse."""
        query = _as_query(query)
        if name in self._by_name:
            self.remove(name)
        clauses = list(dict.fromkeys(required_clauses(query.root) or ()))
        if not clauses:  # parse_query refuses these; a hand-built tree might not
            raise ValueError(f"query {name!r} has no term that must be present")
        exact = _is_exact(query.root)
        best = clauses[0]
        if len(clauses) > 1:
            # Index the rarest-looking clause; never a lone lang: key when there is more
            # (every English article would pull in every "lang:en ..." query).
            best = max(clauses, key=_clause_score)
        others = tuple(c for c in clauses if c is not best)
        term_keys, neg_keys = (), ()
        if exact:
            term_keys = tuple((t.display, _simple_keys(t)) for t in query.terms())
            if isinstance(query.root, And):
                neg_keys = tuple(_simple_keys(c.child) for c in query.root.children if isinstance(c, Not))
        qid = self._next_id
        self._next_id += 1
        seeds = () if exact else tuple(
            (id(t), tuple(required_clauses(t)), _is_simple(t), _spelling_keys(t)) for t in _all_terms(query.root)
        )
        comp = _Compiled(qid, name, query, best, others, exact, term_keys, neg_keys, seeds)
        self._by_name[name] = comp
        if exact and len(term_keys) == 1 and not neg_keys and not others:
            comp.direct = term_keys[0][0]
        for key in best:
            if comp.direct is not None:
                answers = self._pair_answers if _is_pair(key) else self._answers
                answers.setdefault(key, {})[name] = comp.direct
            else:
                post = self._pairs if _is_pair(key) else self._post
                post.setdefault(key, []).append(comp)
        for keys in self._keys_used(comp):
            for key in keys:  # so that articles compute these bigram/prefix keys
                self._count_key(key, +1)
        return query

    def remove(self, name: str) -> None:
        """Forget the query called ``name`` (KeyError if unknown)."""
        comp = self._by_name.pop(name)
        for key in comp.clause:
            if comp.direct is not None:
                table = self._pair_answers if _is_pair(key) else self._answers
                del table[key][name]
            else:
                table = self._pairs if _is_pair(key) else self._post
                table[key].remove(comp)
            if not table[key]:
                del table[key]
        for keys in self._keys_used(comp):
            for key in keys:
                self._count_key(key, -1)

    @staticmethod
    def _keys_used(comp: _Compiled):
        """The key sets a match checks in the article's keys for ``comp``."""
        yield comp.clause
        yield from comp.others
        yield from comp.neg_keys
        for _, clauses, _, spellings in comp.seeds:
            yield from clauses
            yield from spellings

    def _count_key(self, key: str, delta: int):
        if ":" in key:
            return
        if " " in key:
            first, second = key.split(" ", 1)
            for counts, word in ((self._bigram_firsts, first), (self._bigram_seconds, second)):
                counts[word] += delta
                if counts[word] <= 0:
                    del counts[word]
        elif key.endswith("*"):
            prefix = key[:-1]
            self._prefix_lengths[len(prefix)] += delta
            self._prefixes[prefix] += delta
            if self._prefix_lengths[len(prefix)] <= 0:
                del self._prefix_lengths[len(prefix)]
            if self._prefixes[prefix] <= 0:
                del self._prefixes[prefix]
            self._prefix_cache.clear()

    def _present_keys(self, art: ArticleIndex) -> tuple[set[str], set[str]]:
        """The article's keys, and apart the ``"a b"`` pairs among them."""
        words = art.title.words | art.text.words
        keys = words | art.meta
        pairs = set()
        if self._bigram_firsts:
            firsts, seconds = self._bigram_firsts.keys(), self._bigram_seconds.keys()
            pairs = art.title.bigrams(firsts, seconds) | art.text.bigrams(firsts, seconds)
            keys |= pairs
        if self._prefixes:
            keys.update(self._prefix_keys(words))
        return keys, pairs

    def _prefix_keys(self, words: Set[str]) -> list[str]:
        """The indexed ``prefix*`` keys that ``words`` start with."""
        cache = self._prefix_cache
        if len(cache) > 200_000:
            cache.clear()
        found = list(map(cache.get, words))
        if None in found:
            for word in words:
                if word not in cache:
                    cache[word] = self._prefix_keys_of(word)
            found = map(cache.__getitem__, words)
        return list(itertools.chain.from_iterable(found))

    def _prefix_keys_of(self, word: str) -> tuple[str, ...]:
        """The indexed ``prefix*`` keys that ``word`` starts with."""
        prefixes = self._prefixes
        return tuple(word[:n] + "*" for n in self._prefix_lengths if n <= len(word) and word[:n] in prefixes)

    def candidates(self, art: ArticleIndex, keys: tuple[set[str], set[str]] | None = None) -> set[int]:
        """Ids of the queries whose required clauses all have a key in the article
        (``keys``: what ``_present_keys`` gives, if known)."""
        answers, others = self._candidates(*(keys or self._present_keys(art)))
        return {self._by_name[name].qid for name in answers} | {comp.qid for comp in others}

    def _candidates(self, present: set[str], pairs: set[str]) -> tuple[dict[str, str], list[_Compiled]]:
        """The direct answers (query name -> matched term), and the other candidates."""
        answers: dict[str, str] = {}
        for found in itertools.chain(
            map(self._answers.__getitem__, present & self._answers.keys()),
            map(self._pair_answers.__getitem__, pairs & self._pair_answers.keys()),
        ):
            answers.update(found)
        hits = set().union(
            *map(self._post.__getitem__, present & self._post.keys()),
            *map(self._pairs.__getitem__, pairs & self._pairs.keys()),
        )
        disjoint = present.isdisjoint
        return answers, [comp for comp in hits if not comp.others or not any(map(disjoint, comp.others))]

    def match(self, article: Mapping) -> dict[str, list[str]]:
        """``{query name: [matched terms]}`` for the queries the article matches, by name."""
        art = ArticleIndex(article)
        present, pairs = self._present_keys(art)
        answers, others = self._candidates(present, pairs)
        results = {name: [term] for name, term in answers.items()}
        disjoint = present.isdisjoint
        memo = art.memo
        for comp in others:
            if comp.exact:
                if not comp.neg_keys or all(map(disjoint, comp.neg_keys)):
                    terms = [d for d, keys in comp.term_keys if not disjoint(keys)]
                    results[comp.name] = list(dict.fromkeys(terms))
                continue
            # what the article's keys already tell about the query's terms: absent when
            # a required clause has no key or no spelling has all its keys, present when
            # the keys say everything
            for term_id, clauses, simple, spellings in comp.seeds:
                if term_id not in memo:
                    if any(map(disjoint, clauses)) or spellings and not any(map(present.issuperset, spellings)):
                        memo[term_id] = False
                    elif simple:
                        memo[term_id] = True
            if evaluate(comp.query.root, art):
                results[comp.name] = matched_terms(comp.query, art)
        return {name: results[name] for name in sorted(results)}  # sorting str keys: the fast path

    def explain(self, name: str, article: Mapping) -> dict | None:
        """For query ``name``: None if the article does not match, else its matched
        ``terms`` and the character ``spans`` to highlight in ``title`` and ``text``."""
        query = self._by_name[name].query
        art = ArticleIndex(article, with_spans=True)
        if not evaluate(query.root, art):
            return None
        return {
            "terms": matched_terms(query, art),
            "title": _field_spans(query, art.title, "title"),
            "text": _field_spans(query, art.text, "text"),
        }
