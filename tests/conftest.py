"""Shared fixtures: database URLs for every backend, the fake newsroom, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
NEWSROOM_DATA = DATA / "newsroom"
SEED_DATA = DATA / "seed"
PG_SERVER = os.environ.get("NEWSWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_SERVER)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session", autouse=True)
def newswatch_cache_dir(tmp_path_factory):
    """Caches (the decompressed language model) in this run's temporary directory, not the
    user's; the crawls the tests start in subprocesses inherit it."""
    previous = os.environ.get("NEWSWATCH_CACHE_DIR")
    path = tmp_path_factory.mktemp("newswatch-cache")
    os.environ["NEWSWATCH_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("NEWSWATCH_CACHE_DIR", None)
    else:
        os.environ["NEWSWATCH_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not answering at {PG_SERVER} (.ci/run should have started it)")
        pytest.skip(f"PostgreSQL is not answering at {PG_SERVER}")
    return PG_SERVER


def make_pg_schema_url(server: str) -> tuple[str, str]:
    """A private schema on the shared test database, and a URL that uses it."""
    schema = "nw_" + uuid.uuid4().hex[:12]
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema, f"{server}?options=-csearch_path%3D{schema}"


def drop_pg_schema(server: str, schema: str) -> None:
    engine = create_engine(server)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database on every backend: SQLite in a temp file, PostgreSQL in a
    private schema of the `test` database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newswatch.db'}"
        return
    server = request.getfixturevalue("pg_server")
    schema, url = make_pg_schema_url(server)
    yield url
    from crawler.store.repository import _stores

    for key in [k for k in _stores if schema in k]:
        _stores.pop(key).dispose()
    drop_pg_schema(server, schema)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'newswatch.db'}"


def load_manifest() -> list[dict]:
    return json.loads((NEWSROOM_DATA / "manifest.json").read_text("utf-8"))


@pytest.fixture
def newsroom():
    """The fake newsroom with every manifest page published, except `g7.html` (held back)."""
    from crawler.newsroom import Newsroom

    room = Newsroom(name="Test Newsroom").start()
    room.held_back = {}
    for entry in load_manifest():
        body = (NEWSROOM_DATA / entry["file"]).read_bytes()  # the seed page via ../seed/
        content_type = f"text/html; charset={entry['charset']}"
        published = datetime.fromisoformat(entry["published"])
        if entry["file"] == "g7.html":
            room.held_back[entry["file"]] = (entry, body, content_type, published)
            continue
        room.publish(entry["path"], body, entry["title"], published=published, content_type=content_type)
    yield room
    room.stop()


def publish_held_back(room, name: str = "g7.html"):
    entry, body, content_type, published = room.held_back.pop(name)
    return room.publish(entry["path"], body, entry["title"], published=published, content_type=content_type)


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 180, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `newswatch` command in a subprocess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.pop("NEWSWATCH_DB", None) if env is None or "NEWSWATCH_DB" not in env else None
    result = subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"newswatch {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def parse_summary(stderr: str) -> dict[str, int]:
    """The `name=value` pairs of the summary line `newswatch crawl` prints last."""
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith("sources="):
            return {k: int(v) for k, v in (pair.split("=") for pair in line.split())}
    raise AssertionError(f"no summary line in:\n{stderr}")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
