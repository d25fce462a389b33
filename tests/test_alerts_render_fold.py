"""Folding for snippets (crawler.alerts.render.fold_text): the same as folding every
character on its own, with an index back into the text whenever they do not line up."""

from __future__ import annotations

import json
import random

import pytest

from conftest import DATA
from crawler.alerts.render import _fold_char, fold_text, make_snippet


def fold_each_char(text: str) -> tuple[str, list[int] | None]:
    """The plain definition: every character folded by itself."""
    pieces = [_fold_char(ch) for ch in text]
    folded = "".join(pieces)
    if all(len(piece) == 1 for piece in pieces):
        return folded, None
    return folded, [i for i, piece in enumerate(pieces) for _ in piece]


SAMPLES = [
    "",
    "Plain ASCII, with-hyphens and_underscores.",
    "Café au lait — « déjà vu » à Zürich, naïve façade",
    "Straße und Maßnahmen: ß folds to two letters",
    "ﬁnance ﬂow: ligatures fold to two letters",
    "a\u0301 combining mark, e\u0308 another, and \u0301 alone",
    "Президент заявил во вторник — Ё и ё",
    "東京都は火曜日に発表した。",
    "emoji 🗞️ news, astral 𝐁𝐨𝐥𝐝 math letters",
    "non\u00adbreaking soft hyphen, minus \u2212 and en\u2013dash",
    "Ⅻ roman numeral, ½ fraction, ² superscript",
]


def _texts():
    truth = json.loads((DATA / "aeb-dev" / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [entry.get("articleBody") or "" for entry in truth.values()]
    rng = random.Random(5)
    alphabet = "aZ-_ éßﬁ\u0301Ё東🗞½\u00ad"
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    return SAMPLES + bodies + noise


@pytest.mark.parametrize("text", _texts())
def test_fold_text_equals_folding_each_character(text):
    assert fold_text(text) == fold_each_char(text)


def test_a_snippet_around_a_term_after_letters_that_fold_to_two():
    text = "Die Straße ist lang. " * 20 + "Dann kam der Bürgermeister nach Hause."
    snippet, spans = make_snippet(text, ["bürgermeister"])
    assert "Bürgermeister" in snippet
    (start, end), = spans
    assert snippet[start:end] == "Bürgermeister"
