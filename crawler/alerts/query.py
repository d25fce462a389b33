"""The alert query language: ``parse_query(text) -> Query``.

Grammar (precedence: ``NOT`` / ``-`` binds tightest, then ``AND`` — written or implicit
between two terms — then ``OR``)::

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*
    unary    := ("NOT" | "-") unary | near
    near     := primary ["NEAR/" n primary]
    primary  := [scope ":"] (word | '"' phrase '"' | "(" or_expr ")")
    scope    := title | site | lang | source

* Words and phrases are folded like article text (case, accents, hyphens,
  apostrophes; see :mod:`crawler.alerts.text`) and match whole words only.
  ``jong-un`` matches "Jong-un", "Jong Un" and "Jongun". A trailing ``*`` makes the
  last word a prefix (``sanction*``; at least two letters before the ``*``).
* ``a NEAR/n b``: the two terms (words, phrases, or ``(x OR y)`` groups of them) occur
  in the same field with at most ``n`` words between them, in either order.
* ``title:`` restricts to the title (default: title or text). ``site:`` matches the
  article URL's host or any parent domain (``site:lemonde.fr`` matches
  ``www.lemonde.fr``), a single host label (``site:lemonde``), or words of the site
  name (``site:"Le Monde"``). ``lang:`` matches the article language (``lang:en``
  matches ``en-GB``). ``source:`` matches the source name or its feed's host.
  A scope applies to one word, phrase or parenthesised group; scopes do not nest.
* Operators are upper case (``AND OR NOT NEAR/n``); ``and``/``or``/``not`` are words.
* A query must require at least one term to be present: ``-a`` or ``a OR -b`` would
  match nearly every article and are refused.

``str(query)`` is a normalised form (folded terms, explicit ``AND``, minimal
parentheses) that parses back to an equal query.
"""

from __future__ import annotations

import itertools
import logging
import re
import dataclasses
import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from crawler.alerts.text import fold_token, tokenize
from crawler.exceptions import QueryError

logger = logging.getLogger(__name__)

SCOPES = ("title", "site", "lang", "source")
META_SCOPES = ("site", "lang", "source")
MAX_NEAR = 1000
MAX_ALTERNATIVES = 16
MAX_DEPTH = 32
OPEN_QUOTES = '"\u201c\u201e'
CLOSE_QUOTES = '"\u201d\u201c'
_SPECIAL = "()" + OPEN_QUOTES + CLOSE_QUOTES
_SCOPE_RE = re.compile(r"([A-Za-z]+):")
_BARE_WORD_RE = re.compile("[^\\s%s]*" % re.escape(_SPECIAL))  # up to a space or special
_URL_SCHEMES = ("http", "https", "ftp", "mailto")


# --- the syntax tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    def terms(self) -> list[Term | Meta]:
        """The positive terms (not under a NOT), in query order."""
        return []


@dataclass(frozen=True, slots=True)
class Term(Node):
    """Words that must appear in this order: ``chunks`` are groups of words written
    joined (``jong-un`` is one chunk of two words); ``prefix`` makes the last word a
    prefix; ``field`` is ``"title"`` or None (title or text)."""

    chunks: tuple[tuple[str, ...], ...]
    prefix: bool = False
    field: str | None = None
    text: str = dataclasses.field(default="", compare=False)
    position: int = dataclasses.field(default=0, compare=False)

    def terms(self):
        return [self]

    @property
    def alternatives(self) -> list[tuple[str, ...]]:
        """Word sequences that count as this term: each chunk split or joined."""
        found = _ALTERNATIVES.get(self.chunks)
        if found is None:
            if len(_ALTERNATIVES) >= _CACHE_MAX:
                _ALTERNATIVES.clear()
            found = _ALTERNATIVES[self.chunks] = _alternatives(self.chunks)
        return found

    @property
    def display(self) -> str:
        """The term as the user wrote it (for reports)."""
        return self.text or _render_words(self)

    def __str__(self):
        scope = f"{self.field}:" if self.field else ""
        return scope + _render_words(self)


_CACHE_MAX = 200_000
_ALTERNATIVES: dict[tuple[tuple[str, ...], ...], list[tuple[str, ...]]] = {}  # chunks -> alternatives


def _alternatives(chunks: tuple[tuple[str, ...], ...]) -> list[tuple[str, ...]]:
    if all(map((1).__eq__, map(len, chunks))):
        return [tuple(chunk[0] for chunk in chunks)]
    options = [[chunk] if len(chunk) == 1 else [chunk, ("".join(chunk),)] for chunk in chunks]
    alternatives = []
    for combo in itertools.islice(itertools.product(*options), MAX_ALTERNATIVES):
        alternatives.append(tuple(word for part in combo for word in part))
    return alternatives


@dataclass(frozen=True, slots=True)
class Meta(Node):
    """A ``site:``/``lang:``/``source:`` condition; ``value`` is normalised."""

    scope: str
    value: str
    text: str = dataclasses.field(default="", compare=False)
    position: int = dataclasses.field(default=0, compare=False)

    def terms(self):
        return [self]

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"

    @property
    def display(self) -> str:
        return f"{self.scope}:{self.text or self.value}"

    def __str__(self):
        value = self.value
        if not re.fullmatch(r"[\w.\-]+", value):
            value = '"' + value + '"'
        return f"{self.scope}:{value}"


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node
    position: int = dataclasses.field(default=0, compare=False)

    def __str__(self):
        return "NOT " + _wrap(self.child, (And, Or, Near))


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def terms(self):
        return [t for child in self.children for t in child.terms()]

    def __str__(self):
        return " AND ".join(_wrap(child, (Or,)) for child in self.children)


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def terms(self):
        return [t for child in self.children for t in child.terms()]

    def __str__(self):
        return " OR ".join(_wrap(child, (And,)) for child in self.children)


@dataclass(frozen=True, slots=True)
class Near(Node):
    left: Node
    right: Node
    distance: int

    def terms(self):
        return self.left.terms() + self.right.terms()

    def __str__(self):
        return f"{_wrap(self.left, (Or,))} NEAR/{self.distance} {_wrap(self.right, (Or,))}"


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: ``root`` is the tree, ``text`` what the user typed."""

    root: Node
    text: str = dataclasses.field(default="", compare=False)

    def terms(self) -> list[Term | Meta]:
        """Positive terms in query order, without repeats."""
        seen = {}
        for term in self.root.terms():
            seen.setdefault(term, None)
        return list(seen)

    def __str__(self):
        return str(self.root)


def _wrap(node, kinds) -> str:
    return f"({node})" if isinstance(node, kinds) else str(node)


def _render_words(term: Term) -> str:
    words = " ".join("-".join(chunk) for chunk in term.chunks) + ("*" if term.prefix else "")
    if len(term.chunks) > 1:
        return f'"{words}"'
    return words


# --- the lexer -------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str  # WORD PHRASE LPAREN RPAREN AND OR NOT MINUS NEAR SCOPE
    value: str
    pos: int
    extra: int = 0  # NEAR distance; PHRASE: 1 if followed by '*'


def _lex(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(_Tok("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(_Tok("RPAREN", ch, i))
            i += 1
        elif ch in OPEN_QUOTES:
            end = next((j for j in range(i + 1, n) if text[j] in CLOSE_QUOTES), -1)
            if end < 0:
                raise QueryError("unterminated phrase: expected a closing '\"'", text, i)
            star = int(end + 1 < n and text[end + 1] == "*")
            tokens.append(_Tok("PHRASE", text[i + 1 : end], i, star))
            i = end + 1 + star
        elif ch in "-+" and (i == 0 or not _word_char(text[i - 1])):
            if i + 1 >= n or text[i + 1].isspace() or text[i + 1] == ")":
                raise QueryError(f"expected a term after '{ch}'", text, i + 1)
            if ch == "-":
                tokens.append(_Tok("MINUS", ch, i))
            i += 1
        else:
            j = _BARE_WORD_RE.match(text, i).end()
            word = text[i:j]
            i = _lex_word(text, word, i, j, tokens)
    return tokens


def _word_char(ch: str) -> bool:
    return ch.isalnum()


def _lex_word(text: str, word: str, start: int, end: int, tokens: list[_Tok]) -> int:
    """Classify one bare word; returns where lexing resumes."""
    if word in ("AND", "OR", "NOT"):
        tokens.append(_Tok(word, word, start))
        return end
    if word == "NEAR" or word.startswith("NEAR/"):
        number = word[5:]
        if not number.isdigit():
            raise QueryError("NEAR/ needs a number of words, e.g. NEAR/5", text, start + min(len(word), 5))
        distance = int(number)
        if distance > MAX_NEAR:
            raise QueryError(f"NEAR/ distance must be at most {MAX_NEAR}", text, start + 5)
        tokens.append(_Tok("NEAR", word, start, distance))
        return end
    scope = _SCOPE_RE.match(word)
    if scope and scope.group(1).lower() not in _URL_SCHEMES:
        name = scope.group(1).lower()
        rest = word[scope.end() :]
        after = text[end] if end < len(text) else ""
        if name not in SCOPES:
            if rest or after in "(" + OPEN_QUOTES and after:
                raise QueryError(
                    f"unknown scope '{scope.group(1)}:'; expected title:, site:, lang: or source:",
                    text,
                    start,
                )
            tokens.append(_Tok("WORD", word, start))
            return end
        tokens.append(_Tok("SCOPE", name, start))
        if rest:
            tokens.append(_Tok("WORD", rest, start + scope.end()))
        elif not after or after not in "(" + OPEN_QUOTES:
            raise QueryError(f"expected a word, phrase or '(' after '{name}:'", text, end)
        return end
    tokens.append(_Tok("WORD", word, start))
    return end


# --- the parser ------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[_Tok | None] = _lex(text)
        self.tokens.append(None)  # end of input: peek() needs no bounds check
        self.i = 0
        self.scope: str | None = None
        self.scope_pos = 0
        self.depth = 0

    def error(self, message: str, position: int | None = None):
        if position is None:
            position = self.peek().pos if self.peek() else len(self.text)
        raise QueryError(message, self.text, position)

    def peek(self) -> _Tok | None:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def starts_unary(self) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind in ("WORD", "PHRASE", "LPAREN", "SCOPE", "NOT", "MINUS")

    def parse(self) -> Node:
        if self.tokens[0] is None:
            self.error("empty query", 0)
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            if tok.kind == "RPAREN":
                self.error("unexpected ')' with no matching '('")
            self.error(f"unexpected '{tok.value}'")  # pragma: no cover - parse_and consumes the rest
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            if not self.starts_unary():
                self.expected_term_after(tok)
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(_flatten(Or, children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while (tok := self.peek()) is not None:
            if tok.kind == "AND":
                self.take()
                if not self.starts_unary():
                    self.expected_term_after(tok)
            elif not self.starts_unary():
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(_flatten(And, children))

    def expected_term_after(self, op: _Tok):
        nxt = self.peek()
        if nxt is None:
            self.error(f"expected a term after '{op.value}'", len(self.text))
        if nxt.kind in ("AND", "OR", "NEAR"):
            self.error(f"expected a term between '{op.value}' and '{nxt.value}'", nxt.pos)
        self.error(f"expected a term after '{op.value}', found '{nxt.value}'", nxt.pos)

    def nest(self, tok: _Tok):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error(f"the query nests parentheses or NOTs more than {MAX_DEPTH} deep", tok.pos)

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind in ("NOT", "MINUS"):
            self.take()
            if not self.starts_unary():
                self.expected_term_after(tok)
            self.nest(tok)
            child = self.parse_unary()
            self.depth -= 1
            return Not(child, position=tok.pos)
        return self.parse_near()

    def parse_near(self) -> Node:
        left_pos = self.peek().pos if self.peek() else len(self.text)
        left = self.parse_primary()
        tok = self.peek()
        if tok is None or tok.kind != "NEAR":
            return left
        self.take()
        nxt = self.peek()
        if nxt is None or nxt.kind not in ("WORD", "PHRASE", "LPAREN", "SCOPE"):
            self.expected_term_after(tok)
        right_pos = nxt.pos
        right = self.parse_primary()
        _check_near_operand(self, left, left_pos)
        _check_near_operand(self, right, right_pos)
        if (again := self.peek()) is not None and again.kind == "NEAR":
            self.error("NEAR/ joins exactly two terms; combine several NEAR/ with AND", again.pos)
        return Near(left, right, tok.extra)

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            self.error("expected a term", len(self.text))
        if tok.kind == "SCOPE":
            self.take()
            if self.scope is not None:
                self.error(
                    f"scopes cannot be nested: '{tok.value}:' inside '{self.scope}:' "
                    f"at position {self.scope_pos}",
                    tok.pos,
                )
            self.scope, self.scope_pos = tok.value, tok.pos
            try:
                return self.parse_primary()
            finally:
                self.scope = None
        if tok.kind == "LPAREN":
            self.take()
            if (close := self.peek()) is not None and close.kind == "RPAREN":
                self.error("empty parentheses: expected a term inside '(' ... ')'", close.pos)
            self.nest(tok)
            node = self.parse_or()
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                where = close.pos if close is not None else len(self.text)
                self.error(f"expected ')' to close '(' opened at position {tok.pos}", where)
            self.take()
            return node
        if tok.kind in ("WORD", "PHRASE"):
            self.take()
            if self.scope in META_SCOPES:
                return _make_meta(self, tok)
            return _make_term(self, tok)
        if tok.kind == "RPAREN":
            self.error("unexpected ')': expected a term")
        self.error(f"expected a term before '{tok.value}'")


def _flatten(kind, children) -> tuple[Node, ...]:
    flat = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else [child])
    return tuple(flat)


def _check_near_operand(parser: _Parser, node: Node, pos: int):
    ok = isinstance(node, Term) or (isinstance(node, Or) and all(isinstance(c, Term) for c in node.children))
    if not ok:
        parser.error("NEAR/ operands must be words, phrases or (a OR b) groups of them", pos)


def _make_term(parser: _Parser, tok: _Tok) -> Term:
    raw = tok.value
    prefix = False
    star_at = tok.pos + (1 if tok.kind == "PHRASE" else 0)
    if tok.kind == "PHRASE":
        prefix = bool(tok.extra)
        if not prefix and raw.rstrip().endswith("*"):
            prefix, raw = True, raw.rstrip()[:-1]
        if "*" in raw:
            parser.error("'*' is only allowed at the end of a phrase", star_at + raw.index("*"))
    else:
        if raw.endswith("*"):
            prefix = True
            raw = raw[:-1]
        if "*" in raw:
            parser.error("'*' is only allowed at the end of a word", star_at + raw.index("*"))
        if prefix and (not raw or not raw[-1].isalnum()):
            parser.error("'*' must follow a letter or digit", star_at + len(raw))
    chunks = _chunks(raw)
    if not chunks:
        if tok.kind == "PHRASE":
            parser.error("empty phrase: expected words between the quotes", tok.pos)
        parser.error(f"expected a word: '{raw}' has no letters or digits", tok.pos)
    if prefix and len("".join(chunks[-1])) < 2:
        parser.error("a prefix needs at least two letters before '*'", star_at + len(raw))
    field_name = "title" if parser.scope == "title" else None
    display = tok.value if tok.kind == "WORD" else raw + ("*" if prefix else "")
    return Term(tuple(chunks), prefix, field_name, display, tok.pos)


@functools.lru_cache(maxsize=100_000)
def _chunks(raw: str) -> tuple[tuple[str, ...], ...]:
    """Folded words of ``raw``, grouped into chunks of words written joined."""
    if raw.isascii():
        plain = raw.split()
        if all(map(str.isalnum, plain)):  # the usual case: what tokenize would give
            return tuple((fold_token(word),) for word in plain)
    words = tokenize(raw)
    runs = {start: end for start, end in words.runs}
    chunks = []
    i = 0
    while i < len(words.tokens):
        end = runs.get(i, i)
        chunks.append(tuple(words.tokens[i : end + 1]))
        i = end + 1
    return tuple(chunks)


def normalize_meta_value(scope: str, raw: str) -> str:
    """Normalise a ``site:``/``lang:``/``source:`` value the way article metadata is."""
    raw = raw.strip()
    if scope == "lang":
        return raw.lower().replace("_", "-")
    if "://" in raw:
        raw = urlsplit(raw).hostname or ""
    raw = raw.split("/", 1)[0].strip(".").lower()
    if "." in raw and " " not in raw:
        return raw
    return " ".join(tokenize(raw).tokens)


def _make_meta(parser: _Parser, tok: _Tok) -> Meta:
    scope = parser.scope
    if tok.kind == "PHRASE" and tok.extra or tok.kind == "WORD" and "*" in tok.value:
        parser.error(f"'*' is not allowed in {scope}: values", tok.pos)
    value = normalize_meta_value(scope, tok.value)
    if not value:
        parser.error(f"expected a value after '{scope}:'", tok.pos)
    return Meta(scope, value, tok.value, tok.pos)


# --- checks and entry point ------------------------------------------------------------


def _unanchored(node: Node) -> Node | None:
    """Return the sub-tree that lets ``node`` match with no positive term present."""
    if isinstance(node, (Term, Meta, Near)):
        return None
    if isinstance(node, Not):
        return node
    if isinstance(node, And):
        found = [_unanchored(child) for child in node.children]
        return found[0] if all(found) else None
    for child in node.children:  # Or: one loose branch is enough
        if (loose := _unanchored(child)) is not None:
            return loose
    return None


def parse_query(text: str) -> Query:
    """Parse ``text`` into a :class:`Query`; raise :class:`QueryError` if malformed."""
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, not {type(text).__name__}")
    parser = _Parser(text)
    root = parser.parse()
    loose = _unanchored(root)
    if loose is not None:
        raise QueryError(
            "the query can match an article that contains none of its terms "
            "(a NOT or '-' alone); add a term that must be present",
            text,
            getattr(loose, "position", 0),
        )
    return Query(root, text)
