"""Language identification with py3langid's model cached decompressed (crawler.extract.language).

The cached model must classify exactly as py3langid's own loader does, be shared by
processes that start together, and never make a page fail when the cache is damaged.
"""

from __future__ import annotations

import json
import subprocess
import sys

import py3langid.langid
import pytest

from crawler.extract import language
from conftest import DATA, ROOT

SAMPLES = [
    "Le président a annoncé mardi une réforme des retraites très contestée par les syndicats.",
    "The prime minister said on Tuesday that the government would reform pensions next year.",
    "Der Bundeskanzler sagte am Dienstag, die Regierung werde die Renten im nächsten Jahr reformieren.",
    "Президент заявил во вторник, что правительство проведёт пенсионную реформу в следующем году.",
    "El presidente anunció el martes una reforma de las pensiones muy criticada por los sindicatos.",
    "Il presidente ha annunciato martedì una riforma delle pensioni molto contestata dai sindacati.",
    "大統領は火曜日、労働組合から強く批判されている年金改革を発表した。",
    "رئيس الوزراء قال يوم الثلاثاء إن الحكومة ستصلح نظام المعاشات",
    "THE PRIME MINISTER SAID ON TUESDAY THAT THE GOVERNMENT WOULD REFORM PENSIONS",
    "1234 5678 .... !!!! ???? 2023-09-12 12:00",
]


def _texts() -> list[str]:
    """Real article bodies (the aeb-dev ground truth: many sites and languages) and the samples."""
    truth = json.loads((DATA / "aeb-dev" / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [entry.get("articleBody") or "" for entry in truth.values()]
    return [body[:language.SAMPLE_CHARS] for body in bodies if len(body) >= 20] + SAMPLES


@pytest.fixture
def fresh_identifier(monkeypatch, tmp_path):
    """An empty cache directory, and no identifier loaded yet in this process."""
    monkeypatch.setenv("NEWSWATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(language, "_identifier", None)
    yield tmp_path / "cache"
    language._identifier = None


def _model_dirs(cache):
    return sorted(p for p in cache.iterdir() if p.name.startswith("py3langid-") and not p.name.endswith(".tmp"))


def test_the_cached_model_ranks_every_language_as_py3langid_does(fresh_identifier):
    reference = py3langid.langid._load_identifier()
    first = language.identifier()  # decompresses into the cache
    language._identifier = None
    cached = language.identifier()  # maps the cache
    assert isinstance(cached.tk_nextmove, memoryview), "the second load should come from the cache"
    assert len(_model_dirs(fresh_identifier)) == 1
    texts = _texts()
    assert len(texts) > 50
    first.MEMO_SIZE = 50  # cleared again and again
    for _ in range(2):  # the second time, every word of the cached identifier is remembered
        for text in texts:
            expected = reference.rank(text)
            assert first.rank(text) == expected
            assert cached.rank(text) == expected
            assert cached.classify(text) == reference.classify(text)
    assert len(cached._memo) > 1000


def test_detect_language_needs_enough_text(fresh_identifier):
    assert language.detect_language("Short.") is None
    assert language.detect_language(SAMPLES[0]) == "fr"
    assert language.detect_language(SAMPLES[1] * 20) == "en"


def test_a_damaged_cache_falls_back_to_py3langids_loader(fresh_identifier, caplog):
    language.identifier()
    language._identifier = None
    (model_dir,) = _model_dirs(fresh_identifier)
    (model_dir / "nextmove.npy").write_bytes(b"\x93NUMPY not really")
    with caplog.at_level("WARNING", logger="crawler.extract.language"):
        identifier = language.identifier()
    assert "Language model cache unusable" in caplog.text
    assert not isinstance(identifier.tk_nextmove, memoryview)
    assert identifier.classify(SAMPLES[2])[0] == "de"


def test_an_unwritable_cache_falls_back_to_py3langids_loader(fresh_identifier, caplog):
    fresh_identifier.parent.joinpath("cache").write_text("a file where the directory should be")
    with caplog.at_level("WARNING", logger="crawler.extract.language"):
        assert language.detect_language(SAMPLES[4]) == "es"
    assert "Language model cache unusable" in caplog.text


def test_processes_starting_together_share_one_cached_model(tmp_path):
    cache = tmp_path / "cache"
    script = ("from crawler.extract import language\n"
              "identifier = language.identifier()\n"
              f"print(identifier.classify({SAMPLES[0]!r})[0])\n")
    env = {"NEWSWATCH_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.strip() == "fr"
        assert "cache unusable" not in err
    assert len(_model_dirs(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")], "staging directories left behind"
