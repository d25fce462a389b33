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
    return _langid.LanguageIdentifier(
        np.asarray(mapped("ptc")),  # a plain ndarray over the mapping: no np.memmap overhead per look-up
        np.array(mapped("pc")),
        mapped("classes").tolist(),
        memoryview(nextmove),
        mapped("out_feat").tolist(),
        tk_row=mapped("nextmove_row").tolist(),
    )
