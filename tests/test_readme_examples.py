"""The query examples documented in the README are true (urlwatch's habit: docs are tests)."""

from pathlib import Path

import pytest

from crawler.alerts.matcher import match_query

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_examples() -> list[tuple[str, str, str]]:
    text = README.read_text("utf-8")
    table = text.split("| query | matches | does not match |", 1)[1]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        query, hit, miss = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((query.strip("`"), hit, miss))
    return rows


def test_the_readme_has_examples():
    assert len(readme_examples()) >= 8


@pytest.mark.parametrize("query,hit,miss", readme_examples())
def test_readme_query_example(query, hit, miss):
    assert match_query(query, {"title": "", "text": hit}) is not None, (query, hit)
    assert match_query(query, {"title": "", "text": miss}) is None, (query, miss)
