"""Text folding and word tokenisation shared by the query parser and the matcher.

Both sides of a match go through the same functions, so a query word and an article
word compare equal exactly when their *folded* forms do:

* ``fold_token`` — NFKD, combining marks stripped, case-folded, a few letters that
  have no decomposition mapped by hand (``ø``→``o``, ``ł``→``l``, ``æ``→``ae``…):
  ``Corée`` → ``coree``, ``STRASSE``/``Straße`` → ``strasse``.
* ``split_words`` — words are runs of Unicode letters, digits and combining marks;
  every CJK ideograph / kana is a word of its own. The separator before each word is
  kept so that hyphens, apostrophes and soft hyphens between two words can be told
  apart from spaces: ``Jong-un`` is the words ``jong`` ``un`` *and* the compound
  ``jongun`` (see ``tokenize``).

Everything here is linear in the length of the text: a fixed regular expression with
no nested quantifiers, then one pass over the words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import regex

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_WORD_RE = regex.compile(r"([\p{L}\p{N}\p{M}]+)")
_HAS_CJK_RE = regex.compile(r"[%s]" % _CJK)
_WORD_CJK_RE = regex.compile(r"([%s]|[[\p{L}\p{N}\p{M}]--[%s]]+)" % (_CJK, _CJK), regex.V1)
# Fast path: the standard library's ``re`` splits twice as fast, but its \w knows no
# combining marks and no CJK rule; use it only when the text holds neither.
_FAST_WORD_RE = re.compile(r"([^\W_]+)")


def _marks_and_cjk_class() -> str:
    ranges = []
    start = prev = None
    category = unicodedata.category
    for cp in range(0x300, 0x10000):
        if category(chr(cp))[0] == "M":
            if start is None:
                start = cp
            elif cp != prev + 1:
                ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    ranges += [(0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F)]
    return "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


_NEEDS_FULL_RE = re.compile(_marks_and_cjk_class())

#: Characters that join two words into a compound: hyphens, apostrophes, soft hyphen
#: and zero-width joiners. ``Kim Jong-un`` gives ``jong``, ``un`` and ``jongun``.
JOINERS = frozenset(
    "-\u2010\u2011\u00ad"  # hyphen-minus, hyphen, non-breaking hyphen, soft hyphen
    "'\u2019\u02bc\u2032"  # apostrophe, right single quote, modifier apostrophe, prime
    "\u200b\u200c\u200d\u2060"  # zero-width space / non-joiner / joiner, word joiner
)

# Letters that NFKD does not decompose but that readers treat as accented letters.
_EXTRA = str.maketrans(
    {
        "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "ŧ": "t",
        "æ": "ae", "œ": "oe", "þ": "th", "ŀ": "l", "ĸ": "k",
    }
)


_FOLDED: dict[str, str] = {}  # word -> folded; a plain dict is several times faster than lru_cache
_FOLDED_MAX = 500_000


def fold_token(word: str) -> str:
    """Fold one word: NFKD, strip combining marks, casefold, strip what is not alnum."""
    folded = _FOLDED.get(word)
    if folded is None:
        if len(_FOLDED) >= _FOLDED_MAX:
            _FOLDED.clear()
        folded = _FOLDED[word] = _fold(word)
    return folded


def _fold(word: str) -> str:
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = stripped.casefold().translate(_EXTRA)
    if not folded.isalnum():
        # NFKD can produce punctuation (e.g. "㈱" -> "(株)"), or marks that are not
        # "combining" in the canonical sense (spacing marks of Indic scripts): keep
        # letters, digits and marks only.
        folded = "".join(ch for ch in folded if ch.isalnum() or unicodedata.category(ch)[0] == "M")
    return folded


def fold_text(text: str) -> str:
    """Fold a whole string word by word, words separated by single spaces."""
    return " ".join(token for token in tokenize(text).tokens)


def split_words(text: str) -> list[str]:
    """Return ``[sep0, word1, sep1, word2, ..., sepN]`` (separators may be empty)."""
    if text.isascii() or not _NEEDS_FULL_RE.search(text):
        return _FAST_WORD_RE.split(text)
    if _HAS_CJK_RE.search(text):
        return _WORD_CJK_RE.split(text)
    return _WORD_RE.split(text)


#: Separators that may join two words: the joiners, and "." between single letters.
_JOIN_SEPS = JOINERS | {"."}


def _is_acronym_dot(before: str, after: str) -> bool:
    # Acronyms written with full stops: "U.S." -> "us", "U.N." -> "un".
    return len(before) == 1 and len(after) == 1 and before.isalpha() and after.isalpha()


@dataclass
class Tokens:
    """The folded words of one text and the compounds formed by joined words.

    ``tokens[i]`` is the i-th word. ``compounds`` lists ``(start, end, joined)``: the
    words ``start..end`` (inclusive) were written joined by hyphens/apostrophes and
    ``joined`` is their concatenation; ``runs`` the same ``(start, end)`` pairs alone.
    ``spans`` (only with ``with_spans=True``) gives
    each word's ``(start, end)`` character offsets in the original text.
    """

    tokens: list[str]
    compounds: list[tuple[int, int, str]] = field(default_factory=list)
    runs: list[tuple[int, int]] = field(default_factory=list)
    spans: list[tuple[int, int]] | None = None


def tokenize(text: str, with_spans: bool = False) -> Tokens:
    """Split ``text`` into folded words and compounds (see :class:`Tokens`)."""
    if not with_spans:
        found = _tokenize_fast(text)
        if found is not None:
            return found
    return _tokenize_general(text, with_spans)


def _tokenize_general(text: str, with_spans: bool = False) -> Tokens:
    parts = split_words(text)
    raw = parts[1::2]
    tokens = list(map(_FOLDED.get, raw))
    if None in tokens:
        tokens = [fold_token(word) if tok is None else tok for word, tok in zip(raw, tokens)]
    # Folding may empty a word made only of marks (a stray combining accent): keep its
    # slot, with the raw form, so positions and spans stay aligned.
    if "" in tokens:
        tokens = [tok or raw[i] for i, tok in enumerate(tokens)]
    result = Tokens(tokens)
    seps = parts[2:-1:2]  # separators *between* words
    if seps:
        compounds, runs = _compounds(tokens, raw, seps)
        result.compounds, result.runs = compounds, runs
    if with_spans:
        spans = []
        offset = 0
        for i, part in enumerate(parts):
            if i % 2:
                spans.append((offset, offset + len(part)))
            offset += len(part)
        result.spans = spans
    return result


def _joined_at(raw: list[str], seps: list[str]) -> list[int]:
    """Indices ``i`` of the separators that join word ``i`` and word ``i + 1``.

    Separators are nearly all spaces and punctuation that join nothing: the joiner
    characters present at all are found by substring tests on all separators joined
    together, then the separators that are exactly one joiner are located with
    ``list.index`` (all C loops), instead of testing every separator in Python.
    """
    found = []
    every = "".join(seps)
    for sep in _JOIN_SEPS:
        if sep not in every:
            continue
        index, i = seps.index, -1
        try:
            while True:
                i = index(sep, i + 1)
                if sep != "." or _is_acronym_dot(raw[i], raw[i + 1]):
                    found.append(i)
        except ValueError:
            pass
    found.sort()
    return found


def _compounds(tokens, raw, seps):
    joined = _joined_at(raw, seps)
    compounds = []
    runs = []
    k = 0
    while k < len(joined):
        start = end = joined[k]
        k += 1
        while k < len(joined) and joined[k] == end + 1:
            end = joined[k]
            k += 1
        # separators start..end join words start..end+1
        runs.append((start, end + 1))
        compounds.append((start, end + 1, "".join(tokens[start : end + 2])))
    return compounds, runs


# --- the fast path: the same words and compounds by whole-text C operations -------------
#
# ``split_words`` runs a regular expression over every character (~50 ns each). Without
# spans the same result comes from a few passes over the UTF-8 bytes: every character
# that is neither a letter nor a digit (what ``[^\W_]`` excludes) becomes a space, or
# ``'`` if it is a joiner; ASCII letters are lowered on the way (their fold); then
# ``str.split``. Texts that ``split_words`` would cut with its full rules (combining
# marks, CJK) or that hold lone surrogates go the general way.

_BYTE_MAP = bytearray(range(256))
for _b in range(128):
    _ch = chr(_b)
    _BYTE_MAP[_b] = ord(_ch.lower() if _ch.isalnum() else "'" if _ch in JOINERS else "." if _ch == "." else " ")
_BYTE_MAP = bytes(_BYTE_MAP)
_ASCII_BYTES = bytes(range(128))
_CHAR_BYTES: dict[str, bytes | None] = {}  # non-ASCII char -> b"" (a word char), b" ", b"'", None (general path)


def _char_bytes(ch: str) -> bytes | None:
    found = _CHAR_BYTES.get(ch, b"?")
    if found == b"?":
        if _NEEDS_FULL_RE.match(ch):
            found = None
        elif ch.isalnum():  # a word character (even "ʼ", a modifier letter)
            found = b""
        else:
            found = b"'" if ch in JOINERS else b" "
        if len(_CHAR_BYTES) < 100_000:
            _CHAR_BYTES[ch] = found
    return found


def _tokenize_fast(text: str) -> Tokens | None:
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return None
    if not data.isascii():
        for ch in set(data.translate(None, _ASCII_BYTES).decode()):
            replacement = _char_bytes(ch)
            if replacement is None:
                return None
            if replacement:
                data = data.replace(ch.encode(), replacement)
    # every separator is now one of " ", "'" (a joiner) and "." (a joiner between letters)
    line = data.translate(_BYTE_MAP).decode()
    if "." in line:
        line = _acronym_dots(line)
    chunks = line.split()
    runs = []
    if "'" in line:
        raw, runs = _split_joined(chunks)
    else:
        raw = chunks
    if line.isascii():
        tokens = raw  # lowered already: the fold of an ASCII word
    else:
        tokens = list(map(_FOLDED.get, raw))
        if None in tokens:
            tokens = [fold_token(word) if tok is None else tok for word, tok in zip(raw, tokens)]
        if "" in tokens:  # a word that folds to nothing keeps its written form: general path
            return None
    compounds = [(start, end, "".join(tokens[start : end + 1])) for start, end in runs]
    return Tokens(tokens, compounds, runs)


def _acronym_dots(line: str) -> str:
    """``line`` with each dot that stands alone between two single letters ("u.s") as
    ``'``, the other dots as spaces."""
    line = line.replace(". ", "  ")  # a dot followed by a space joins nothing
    find, last = line.find, len(line) - 1
    parts, start, i = [], 0, -1
    while (i := find(".", i + 1)) >= 0:
        if (
            0 < i < last
            and line[i + 1].isalpha()
            and line[i - 1].isalpha()
            and (i < 2 or line[i - 2] in " '.")
            and (i + 2 > last or line[i + 2] in " '.")
        ):
            parts.append(line[start:i])
            start = i + 1
    if parts:
        parts.append(line[start:])
        line = "'".join(parts)
    return line.replace(".", " ")


def _split_joined(chunks: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of the whitespace-separated ``chunks``, and the runs of joined words:
    inside a chunk, two words are joined when exactly one ``'`` stands between them."""
    line = " ".join(chunks)
    marked = []  # indices of the chunks that hold a "'"
    find, count = line.find, line.count
    i, k, prev = -1, 0, 0
    while (i := find("'", i + 1)) >= 0:
        k += count(" ", prev, i)
        prev = i
        if not marked or marked[-1] != k:
            marked.append(k)
    words: list[str] = []
    runs = []
    done = 0
    for k in marked:
        words += chunks[done:k]
        done = k + 1
        start = None  # the index of the first word of the run being read
        for piece in chunks[k].split("'") + [""]:
            if piece:
                if start is None:
                    start = len(words)
                words.append(piece)
            elif start is not None:
                if len(words) - 1 > start:
                    runs.append((start, len(words) - 1))
                start = None
    words += chunks[done:]
    return words, runs
