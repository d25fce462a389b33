"""Text normalisation of extracted paragraphs: spaces, invisible characters, NFC, quotes.

The rules, applied in this order by :func:`normalize_text`:

1. Unicode NFC.
2. Invisible characters dropped: zero-width space (U+200B), word joiner (U+2060),
   BOM (U+FEFF), soft hyphen (U+00AD), left/right marks (U+200E/F).
3. Every kind of space (NBSP, narrow NBSP, thin, em/en spaces, tabs, line breaks inside
   a paragraph) becomes one ASCII space; runs collapse; ends are stripped.

:func:`normalize_quotes` then makes double quotation marks consistent for the body's
language: languages that write guillemets (fr, ru, uk, ...) get ``« … »`` when a
paragraph mixes the two styles; every other language gets ``“ … ”`` instead of
guillemets (the space a French typography filter put inside them is dropped).
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad\u200e\u200f"), None)

# Languages whose own typography uses guillemets for double quotes.
GUILLEMET_LANGUAGES = frozenset({"fr", "ru", "uk", "be", "kk", "ky", "tt", "ba", "hy", "az",
                                 "uz", "ps", "fa", "ar", "el", "ca", "eu", "no", "nb", "nn"})

_OPEN_GUILLEMET = re.compile(r"«\s*")
_CLOSE_GUILLEMET = re.compile(r"\s*»")
_OPEN_CURLY = re.compile(r"“\s*")
_CLOSE_CURLY = re.compile(r"\s*”")


def normalize_text(text: str) -> str:
    """NFC, invisible characters removed, all whitespace runs as one space, stripped."""
    if not text:
        return ""
    if not text.isascii():
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = text.translate(_INVISIBLE)
    # str.split() splits on every Unicode space (NBSP, narrow NBSP, em space, ...).
    return " ".join(text.split())


def normalize_quotes(text: str, language: str | None) -> str:
    """Make double quotation marks consistent for ``language`` (ISO 639-1)."""
    has_guillemets = "«" in text or "»" in text
    if not has_guillemets:
        return text
    if language in GUILLEMET_LANGUAGES:
        if "“" in text or "”" in text:
            text = _OPEN_CURLY.sub("« ", text)
            text = _CLOSE_CURLY.sub(" »", text)
        return text
    text = _OPEN_GUILLEMET.sub("“", text)
    return _CLOSE_GUILLEMET.sub("”", text)
