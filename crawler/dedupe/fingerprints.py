"""Content fingerprints: normalised text, exact hash, word shingles, MinHash signatures.

Everything here is pure and deterministic across processes and machines (xxhash with
fixed seeds, permutations drawn from a fixed NumPy seed), so a signature stored by one
process can be compared with one computed by another.

- :func:`normalize_text` — NFKC, accents stripped, case folded, quotes/punctuation and
  whitespace folded to single spaces: two copies that differ only by typography
  (« » vs “ ”, ’ vs ', non-breaking spaces, line breaks) normalise to the same string.
- :func:`content_hash` — signed 64-bit xxh64 of the normalised body (fits ``BIGINT``).
- :func:`shingles` — the set of 64-bit hashes of overlapping ``k``-word windows.
- :func:`minhash_signature` — ``num_perm`` 32-bit minimum hashes of the shingle set
  (multiply-add-shift hashing of the 64-bit shingle hashes); the fraction of equal
  positions between two signatures estimates the Jaccard similarity of the sets.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import xxhash

SHINGLE_SIZE = 4
NUM_PERM = 128
HASH_SEED = _SEED = 0x6E657773  # "news"
_EMPTY_HASH = np.uint64((1 << 32) - 1)
_SHINGLE_MUL = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_WORD_MUL = 0x100000001B3  # odd, hence invertible modulo 2^64
_WORD_INV = pow(_WORD_MUL, -1, 1 << 64)
_POWERS: dict[int, np.ndarray] = {}


def to_signed64(value: int) -> int:
    """An unsigned 64-bit integer as the signed value a ``BIGINT`` column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


# Marks that are accents (deleted: "é" -> "e", "й" -> "и"), unlike the vowel signs of
# Indic or Thai scripts, which are part of their words and kept.
_ACCENT_BLOCKS = ((0x0300, 0x036F), (0x0483, 0x0489), (0x064B, 0x065F), (0x0670, 0x0670),
                  (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F))


_ACCENTS = re.compile("[" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _ACCENT_BLOCKS) + "]+")


# Scripts whose vowel signs are combining marks count as word characters as whole blocks
# (Indic, Thai, Lao, Tibetan, Myanmar, Khmer), but for the dandas.
_WORD = re.compile("[\\w\u0900-\u0963\u0966-\u0dff\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff]+")


# Word-character ranges beyond \\w (above): Indic, Thai, Lao, Tibetan, Myanmar, Khmer.
_EXTRA_WORD_BLOCKS = ((0x0900, 0x0963), (0x0966, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF))
_SEPARATOR, _WORDCHAR, _ACCENT = 0, 1, 2
_SHORT_TEXT = 400  # characters: below, the regular expressions are faster than numpy


@lru_cache(maxsize=1)
def _bmp_classes() -> np.ndarray:
    """Class of every Basic Multilingual Plane code point: separator, word character
    (what ``_WORD`` matches, but "_") or accent mark (what ``_ACCENTS`` matches)."""
    classes = np.fromiter((c.isalnum() for c in map(chr, range(0x10000))), dtype=np.uint8, count=0x10000)
    for lo, hi in _EXTRA_WORD_BLOCKS:
        classes[lo:hi + 1] = _WORDCHAR
    for lo, hi in _ACCENT_BLOCKS:
        classes[lo:hi + 1] = _ACCENT
    return classes


def _classes(points: np.ndarray) -> np.ndarray:
    table = _bmp_classes()
    if not len(points) or points.max() < 0x10000:
        return table[points]
    out = table[np.minimum(points, 0xFFFF)]
    for i in np.flatnonzero(points >= 0x10000):  # rare: emoji, historic scripts, CJK extensions
        out[i] = _WORDCHAR if _WORD.fullmatch(chr(points[i])) else _SEPARATOR
    return out


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _from_code_points(points: np.ndarray) -> str:
    return points.tobytes().decode("utf-32-le", "surrogatepass")


def normalize_text(text: str) -> str:
    """Fold typography away: NFKC, no accents, casefolded, words separated by one space.

    Words are runs of ``_WORD`` characters except "_"; the result equals
    ``" ".join(_WORD.findall(casefold(strip_accents(nfkd(nfkc(text)))).replace("_", " ")))``,
    computed with one table look-up per code point instead of regular expressions
    (2-3x faster on a news article; short texts such as titles take the regular
    expressions, whose fixed cost is lower).
    """
    if not text:
        return ""
    if len(text) < _SHORT_TEXT:
        if not text.isascii():
            text = _ACCENTS.sub("", unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)))
        return " ".join(_WORD.findall(text.casefold().replace("_", " ")))
    if text.isascii():
        text = text.lower()  # casefold() of ASCII
    else:
        text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
        points = _code_points(text)
        accents = _classes(points) == _ACCENT
        if accents.any():
            text = _from_code_points(points[~accents])
        text = text.casefold()
    points = _code_points(text)
    word = _classes(points) == _WORDCHAR
    keep = word.copy()
    keep[1:] |= word[:-1]  # a word character, or the first separator after one
    out = np.where(word, points, np.uint32(32))[keep]
    if len(out) and out[-1] == 32:
        out = out[:-1]
    return _from_code_points(out)


def content_hash(text: str) -> int:
    """Signed 64-bit xxh64 of the normalised text: same normalised body, same hash."""
    return to_signed64(xxhash.xxh64_intdigest(normalize_text(text).encode(), seed=_SEED))


def key_hash(kind: str, value: str) -> int:
    """Signed 64-bit hash of a typed lookup key (``kind`` keeps key spaces apart)."""
    return to_signed64(xxhash.xxh64_intdigest(f"{kind}\x00{value}".encode(), seed=_SEED))


def words(text: str) -> list[str]:
    return normalize_text(text).split()


def shingles(text: str, k: int = SHINGLE_SIZE) -> set[int]:
    """Hashes of the overlapping ``k``-word windows of the normalised text.

    A text shorter than ``k`` words is one shingle; an empty text has none.
    """
    return shingles_of_words(words(text), k)


def shingles_of_words(tokens: list[str], k: int = SHINGLE_SIZE) -> set[int]:
    return set(shingle_array(tokens, k).tolist())


def _powers(base: int, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2^64, cached and grown on demand."""
    cached = _POWERS.get(base)
    if cached is None or len(cached) < n:
        size = max(n, 2 * len(cached) if cached is not None else 4096)
        steps = np.full(size, base, dtype=np.uint64)
        steps[0] = 1
        with np.errstate(over="ignore"):
            cached = _POWERS[base] = np.cumprod(steps, dtype=np.uint64)
    return cached[:n]


def word_hashes(normalized: str) -> np.ndarray:
    """uint64 hashes of the space-separated words of a normalised text, in order.

    Vectorised polynomial hashing of the UTF-8 bytes, modulo 2^64: with prefix sums
    ``S`` of ``c_j * P^-j`` (``P`` is odd, so invertible mod 2^64), the word
    ``[s, e)`` hashes to ``(S[e] - S[s]) * P^(e-1)`` — no Python loop per word.
    """
    if not normalized:
        return np.empty(0, dtype=np.uint64)
    data = np.frombuffer(normalized.encode(), dtype=np.uint8)
    n = len(data)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum((data.astype(np.uint64) + np.uint64(1)) * _powers(_WORD_INV, n), out=prefix[1:])
        spaces = np.flatnonzero(data == 32)
        starts = np.concatenate(([0], spaces + 1))
        ends = np.concatenate((spaces, [n]))
        return (prefix[ends] - prefix[starts]) * _powers(_WORD_MUL, n)[ends - 1]


def shingle_array(tokens: list[str] | str, k: int = SHINGLE_SIZE) -> np.ndarray:
    """Sorted unique uint64 hashes of the ``k``-word windows of already normalised words
    (a list of words, or the normalised text itself).

    A window's hash combines its words' hashes polynomially (mod 2^64), then is mixed
    so that the values spread over 64 bits.
    """
    h = word_hashes(tokens if isinstance(tokens, str) else " ".join(tokens))
    if not len(h):
        return h
    k = min(k, len(h))
    n = len(h) - k + 1
    acc = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(k):
            acc = acc * _SHINGLE_MUL + h[i:i + n]
        acc ^= acc >> np.uint64(33)  # murmur3 finaliser
        acc *= _MIX1
        acc ^= acc >> np.uint64(33)
    acc.sort()  # sorted unique values (np.unique costs ten times more on 400 values)
    return acc[np.concatenate(([True], acc[1:] != acc[:-1]))]


@lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(_SEED)
    a = rng.randint(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    b = rng.randint(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_of_shingles(shingle_set, num_perm: int = NUM_PERM) -> np.ndarray:
    """``num_perm`` uint32 minimum hashes of 64-bit shingle hashes (a set or a uint64 array).

    Permutation ``i`` is the multiply-add-shift hash ``(a_i * x + b_i mod 2^64) >> 32``
    with odd ``a_i``: no modulo, so a 128 x 500 matrix costs a few tens of microseconds.
    """
    if len(shingle_set) == 0:
        return np.full(num_perm, _EMPTY_HASH, dtype=np.uint32)
    a, b = _permutations(num_perm)
    if isinstance(shingle_set, np.ndarray):
        values = shingle_set
    else:
        values = np.fromiter(shingle_set, dtype=np.uint64, count=len(shingle_set))
    with np.errstate(over="ignore"):
        hashed = np.multiply.outer(values, a)
        hashed += b
    return (hashed.min(axis=0) >> np.uint64(32)).astype(np.uint32)


def minhash_signature(text: str, num_perm: int = NUM_PERM, k: int = SHINGLE_SIZE) -> np.ndarray:
    """MinHash signature (uint32 array of length ``num_perm``) of the text's word shingles."""
    return minhash_of_shingles(shingles(text, k), num_perm)


def signature_to_bytes(signature: np.ndarray) -> bytes:
    return signature.astype("<u4").tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4")


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal MinHash positions: an unbiased estimate of the Jaccard similarity."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
