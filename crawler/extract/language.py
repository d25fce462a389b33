"""Language identification: py3langid's model, decompressed once per machine, not per process.

py3langid ships its model LZMA-compressed (4.6 MB on disk, 68 MB of arrays). Its own
loader decompresses it in every process that identifies a language (each crawl process,
each extraction worker): ~0.85 s of CPU each time, a few percent of a whole crawl. The
first process here to need the model writes the arrays uncompressed to a cache
directory; every later one maps them from there in a few milliseconds, and the pages
of the model a process never touches are never read into its memory.

The cache is ``$NEWSWATCH_CACHE_DIR`` (default ``$XDG_CACHE_HOME/newswatch`` or
``~/.cache/newswatch``), one directory per model file and py3langid version, written
to a temporary name and renamed into place, so processes starting together never see a
half-written model. Any problem with the cache (not writable, damaged, a py3langid
whose internals differ) falls back to py3langid's own loader: slower, same results.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import py3langid
from py3langid import langid as _langid

logger = logging.getLogger(__name__)

SAMPLE_CHARS = 700  # characters of the body that decide its language
MIN_SAMPLE_CHARS = 20

_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
_lock = threading.Lock()
_identifier = None


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text`` (py3langid), or None for too little text."""
    sample = text[:SAMPLE_CHARS]
    if len(sample) < MIN_SAMPLE_CHARS:
        return None
    language, _score = identifier().classify(sample)
    return language


def identifier():
    """This process's :class:`py3langid.langid.LanguageIdentifier` (loaded on first use)."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                _identifier = _load()
    return _identifier


def cache_dir() -> Path:
    """Where decompressed models are kept (see the module docstring)."""
    configured = os.environ.get("NEWSWATCH_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "newswatch"


class WordMemoIdentifier(_langid.LanguageIdentifier):
    """py3langid's identifier, its byte-by-byte DFA walk remembered per word.

    The walk over a word depends only on the DFA state it starts in, so ``(state, word)``
    gives the state it ends in and the features it passes, the same every time: a word
    seen before costs one dictionary look-up instead of a step per byte through the 39 MB
    transition table. Features come out in the same order, so the scores are the same
    to the last bit (tested against py3langid's own identifier). At most ``MEMO_SIZE``
    words are kept; then the memo starts again.
    """

    MEMO_SIZE = 100_000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._memo: dict[tuple[int, bytes], tuple[int, tuple[int, ...]]] = {}

    def _raw_score(self, text):
        visits = self._visit_counts(text)
        if visits:
            return self._sparse_score(visits, self.nb_ptc)
        fill = 0.0 if self._norm_probs else _langid.RAW_FLOOR  # as py3langid: no feature at all
        return np.full(len(self.nb_classes), fill, dtype=np.float32)

    def _visit_counts(self, text: bytes) -> Counter | None:
        nextmove, rowbase, output, memo = self.tk_nextmove, self._rowbase, self.tk_output, self._memo
        if len(memo) > self.MEMO_SIZE:
            memo.clear()
        features: list[int] = []
        extend, append = features.extend, features.append
        state = 0
        words = text.split(b" ")
        last = len(words) - 1
        for position, word in enumerate(words):
            known = memo.get((state, word))
            if known is None:
                end, passed = state, []
                for byte in word:
                    end = nextmove[rowbase[end] + byte]
                    feature = output[end]
                    if feature >= 0:
                        passed.append(feature)
                known = memo[(state, word)] = (end, tuple(passed))
            state = known[0]
            extend(known[1])
            if position != last:  # the space after the word
                state = nextmove[rowbase[state] + 32]
                feature = output[state]
                if feature >= 0:
                    append(feature)
        return Counter(features) if features else None


def _model_file() -> Path:
    return Path(_langid.MODEL_DIR) / _langid.MODEL_FILE


def _cache_key(model_file: Path) -> str:
    stat = model_file.stat()
    version = getattr(py3langid, "__version__", "")
    digest = hashlib.sha256(f"{model_file}|{stat.st_size}|{stat.st_mtime_ns}|{version}".encode()).hexdigest()
    return f"py3langid-{digest[:16]}"


def _load():
    try:
        model_file = _model_file()
        directory = cache_dir() / _cache_key(model_file)
        if not directory.is_dir():
            _write_cache(model_file, directory)
        return _from_cache(directory)
    except Exception as exc:  # the cache is an optimisation: never a reason to fail a page
        logger.warning("Language model cache unusable (%s: %s); loading py3langid's compressed model "
                       "instead (~0.85 s of CPU per process; set NEWSWATCH_CACHE_DIR to a writable directory)",
                       type(exc).__name__, exc)
        return _langid._load_identifier()


def _write_cache(model_file: Path, directory: Path) -> None:
    """Decompress ``model_file`` into ``directory`` (atomically: a temporary name, then a rename)."""
    import io
    import lzma

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", suffix=".tmp", dir=directory.parent))
    try:
        with lzma.open(model_file) as source:
            data = source.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            missing = set(_ARRAYS).difference(arrays.files)
            if missing:
                raise ValueError(f"{model_file}: unexpected model layout, missing {sorted(missing)}")
            for name in _ARRAYS:
                np.save(staging / f"{name}.npy", arrays[name], allow_pickle=False)
        try:
            staging.rename(directory)
        except OSError:
            if not directory.is_dir():  # not another process's copy that won the race
                raise
        else:
            logger.info("Language model decompressed into %s", directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _from_cache(directory: Path):
    """An identifier over the arrays in ``directory``, mapped read-only.

    What py3langid's loader builds, with the same values: the naive Bayes table and the
    DFA's transitions stay in the mapped files (the DFA walk indexes a memoryview, as
    fast as py3langid's ``array``); the small arrays become lists.
    """

    def mapped(name):
        return np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)

    nextmove = mapped("nextmove")
    if nextmove.dtype not in (np.uint16, np.uint32) or nextmove.ndim != 1:
        raise ValueError(f"{directory}: unexpected transitions array {nextmove.dtype} {nextmove.shape}")
    return WordMemoIdentifier(
        np.asarray(mapped("ptc")),  # a plain ndarray over the mapping: no np.memmap overhead per look-up
        np.array(mapped("pc")),
        mapped("classes").tolist(),
        memoryview(nextmove),
        mapped("out_feat").tolist(),
        tk_row=mapped("nextmove_row").tolist(),
    )
