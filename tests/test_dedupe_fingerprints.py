"""Fingerprints: typography folded away, hashes stable across processes, MinHash estimates Jaccard."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from crawler.dedupe.fingerprints import (
    content_hash,
    estimate_jaccard,
    minhash_signature,
    normalize_text,
    shingles,
    signature_from_bytes,
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
