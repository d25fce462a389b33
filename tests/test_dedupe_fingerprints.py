"""Fingerprints: typography folded away, hashes stable across processes, MinHash estimates Jaccard."""

import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np

from crawler.dedupe.fingerprints import (
    _ACCENTS,
    _WORD,
    content_hash,
    estimate_jaccard,
    minhash_signature,
    normalize_text,
    shingles,
    signature_from_bytes,
    shingle_array,
    signature_to_bytes,
)

DATA = Path(__file__).parent / "data" / "dedupe" / "articles.json"
ROOT = Path(__file__).resolve().parent.parent


def _articles():
    return {a["key"]: a for a in json.loads(DATA.read_text(encoding="utf-8"))["articles"]}


def test_normalize_text_folds_typography():
    assert normalize_text("« Vladimir Putin’s  ‘goals’ »\n\nhe SAID. ") == "vladimir putin s goals he said"
    assert normalize_text('"Vladimir Putin\'s \'goals\'" he said') == "vladimir putin s goals he said"
    assert normalize_text("Café ＡＢＣ\u00a0straße") == "cafe abc strasse"
    assert normalize_text("") == ""


def test_content_hash_same_normalised_body():
    a = "“It will be a full-blown visit,” he said.\n\nA dinner is planned."
    b = '"It will be a full-blown visit," he said. A dinner is planned.  '
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(a + " Then talks.")
    h = content_hash(a)
    assert -(1 << 63) <= h < (1 << 63)


def test_shingles():
    assert len(shingles("one two three four five six")) == 3
    assert len(shingles("too short")) == 1
    assert shingles("") == set()
    assert shingles("A b c d e") == shingles("a, B; c d — e")


def test_minhash_estimates_jaccard():
    arts = _articles()
    seed, repost, other = arts["seed"]["text"], arts["repost"]["text"], arts["other_story"]["text"]
    for x, y in [(seed, repost), (seed, other)]:
        sx, sy = shingles(x), shingles(y)
        exact = len(sx & sy) / len(sx | sy)
        estimate = estimate_jaccard(minhash_signature(x), minhash_signature(y))
        assert abs(estimate - exact) < 0.15, (estimate, exact)
    assert estimate_jaccard(minhash_signature(seed), minhash_signature(seed)) == 1.0


def test_signature_bytes_round_trip_and_stable_across_processes():
    text = _articles()["seed"]["text"]
    sig = minhash_signature(text)
    assert sig.dtype == np.uint32 and len(sig) == 128
    data = signature_to_bytes(sig)
    assert len(data) == 512
    assert np.array_equal(signature_from_bytes(data), sig)
    code = ("import sys, json; from crawler.dedupe.fingerprints import *; "
            "t = sys.stdin.read(); print(json.dumps([signature_to_bytes(minhash_signature(t)).hex(), content_hash(t)]))")
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert json.loads(out) == [data.hex(), content_hash(text)]


def _reference_normalize(text: str) -> str:
    """The definition normalize_text implements with a code point table: regular expressions."""
    text = _ACCENTS.sub("", unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)))
    return " ".join(_WORD.findall(text.casefold().replace("_", " ")))


def test_normalize_text_equals_its_regex_definition():
    samples = [a["text"] for a in _articles().values()] + [
        "İstanbul’da ŞEHİR — naïve résumé, ẞ straße", "हिन्दी में समाचार: प्रधानमंत्री ने कहा।",
        "ข่าวภาษาไทย วันนี้", "Ελληνικά ΝΈΑ; русский «новости» й", "snake_case __init__ x_",
        "emoji 🎉 party 𝐁𝐨𝐥𝐝 𝟏𝟐 𠜎𠜱 end", "日本語のニュース　ﾃｽﾄ", "  leading and trailing…  ", "—", "a"]
    rng = random.Random(5)
    pool = [chr(c) for c in [*range(0x20, 0x250), *range(0x300, 0x370), *range(0x900, 0x980),
                             *range(0xE00, 0xE60), *range(0x1F600, 0x1F610), 0x1D400, 0x20000, 0xFF21]]
    samples += ["".join(rng.choice(pool) for _ in range(rng.randrange(1, 40))) for _ in range(300)]
    samples += [" ".join(samples[-300:])]  # long: the code point table
    for text in samples:
        assert normalize_text(text) == _reference_normalize(text), text


def test_shingle_array_sorted_unique():
    text = normalize_text(_articles()["seed"]["text"] + " the end the end the end the end")
    arr = shingle_array(text)
    assert np.array_equal(arr, np.unique(arr))
    assert set(arr.tolist()) == shingles(text)
