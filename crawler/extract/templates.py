"""Site templates: boilerplate lines a site repeats on most of its pages, learned from them.

A :class:`SiteTemplate` counts, for one site, on how many of its pages each short
paragraph (by fingerprint) appeared. Once the template has seen ``MIN_PAGES`` pages, a
paragraph seen on at least ``MIN_SHARE`` of them (and on ``MIN_PAGES`` at least) is
boilerplate, and :func:`crawler.extract.extract_article` drops it, even when the generic
extractor kept it. A sentence of article text that repeats on one or two other pages is
never enough.

The pipeline, per page of site ``host``::

    template = load_template(conn, host)            # once per site and crawl, or cached
    article = extract_article(html, url, template=template.for_extraction())  # in a worker
    learn_from_page(template, article)              # in the main process
    save_template(conn, host, template)             # adds this run's counts (concurrency safe)

Counts are saved as increments (``pages = pages + n``), so two crawlers of one site
sharing the database do not lose each other's counts.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

import xxhash
from sqlalchemy import delete, select, update

from crawler.store import schema

logger = logging.getLogger(__name__)

MIN_PAGES = 4            # pages a template must have seen before it removes anything
MIN_SHARE = 0.5          # share of the site's pages a line must appear on
MAX_LINE_CHARS = 400     # longer paragraphs are article text, not furniture: not learned
MAX_ENTRIES = 5000       # in memory; one-off lines are forgotten beyond this
PRUNE_EVERY = 50         # pages between deletions of one-off lines from the database

_NON_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")
# The same on ASCII bytes: digits -> "0" (runs then collapsed by _ZEROS), [\W_] -> " ".
_ASCII_KEY = bytes(48 if 48 <= b <= 57 else b if (65 <= b <= 90 or 97 <= b <= 122) else 32
                   for b in range(256))
_ZEROS = re.compile(rb"00+")


class _CombiningMarks(dict):
    """str.translate table deleting combining marks (``unicodedata.combining(c) != 0``),
    filled in as characters are met: a C-level lookup per character instead of a Python
    call."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        self[code] = value
        return value


_STRIP_COMBINING = _CombiningMarks()


def fingerprint(text: str) -> int | None:
    """A signed 64-bit fingerprint of a line, blind to case, punctuation, digits and accents."""
    key = text.lower()
    if key.isascii():
        # ASCII is its own NFKD form and has no combining marks; the two substitutions
        # below, done on bytes: every digit a "0" and every non-word byte a space, then
        # the runs collapsed.
        data = key.encode("ascii").translate(_ASCII_KEY)
        if b"00" in data:
            data = _ZEROS.sub(b"0", data)
        data = b" ".join(data.split())
        if not data:
            return None
        return xxhash.xxh64_intdigest(data) - (1 << 63)
    key = unicodedata.normalize("NFKD", key).translate(_STRIP_COMBINING)
    key = _NON_WORD.sub(" ", _DIGITS.sub("0", key)).strip()
    if not key:
        return None
    return xxhash.xxh64_intdigest(key.encode("utf-8")) - (1 << 63)


def line_fingerprints(blocks) -> list[tuple[int, str]]:
    """(fingerprint, sample) of each distinct short line among ``blocks``: what a template
    learns from a page (computed where the page is extracted, learned where templates live)."""
    seen: set[int] = set()
    lines = []
    for block in blocks:
        if not block or len(block) > MAX_LINE_CHARS:
            continue
        fp = fingerprint(block)
        if fp is None or fp in seen:
            continue
        seen.add(fp)
        lines.append((fp, block[:200]))
    return lines


@dataclass
class SiteTemplate:
    """Per-site line counts (picklable; no database handle inside)."""

    pages: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    samples: dict[int, str] = field(default_factory=dict)
    # Increments since the last save (what save_template adds to the database).
    new_pages: int = 0
    new_counts: dict[int, int] = field(default_factory=dict)
    # Lines seen on MIN_PAGES pages or more (counts only grow, so a line never leaves):
    # the only ones for_extraction has to look at. Built on first use; kept up to date
    # by learn_lines, so change ``counts`` directly only before that.
    _frequent: set | None = field(default=None, init=False, repr=False, compare=False)

    def learn(self, blocks) -> None:
        """Count one page's paragraphs (or text blocks)."""
        self.learn_lines(line_fingerprints(blocks))

    def learn_lines(self, lines: list[tuple[int, str]]) -> None:
        """Count one page's lines, given as :func:`line_fingerprints` made them."""
        frequent = self._frequent
        for fp, sample in lines:
            count = self.counts[fp] = self.counts.get(fp, 0) + 1
            self.new_counts[fp] = self.new_counts.get(fp, 0) + 1
            self.samples.setdefault(fp, sample)
            if count == MIN_PAGES and frequent is not None:
                frequent.add(fp)
        self.pages += 1
        self.new_pages += 1
        if len(self.counts) > MAX_ENTRIES:
            self._forget_rare()

    def _forget_rare(self) -> None:
        for fp in [fp for fp, n in self.counts.items() if n <= 1 and fp not in self.new_counts]:
            del self.counts[fp]
            self.samples.pop(fp, None)
            if self._frequent is not None:
                self._frequent.discard(fp)

    @property
    def active(self) -> bool:
        return self.pages >= MIN_PAGES

    def is_boilerplate(self, text: str) -> bool:
        """Whether this line is one the site repeats on most of its pages."""
        if not self.active or len(text) > MAX_LINE_CHARS:
            return False
        fp = fingerprint(text)
        if fp is None:
            return False
        count = self.counts.get(fp, 0)
        return count >= MIN_PAGES and count >= MIN_SHARE * self.pages

    def boilerplate(self) -> list[str]:
        """Samples of the lines currently treated as boilerplate (for reports and debugging)."""
        return [self.samples.get(fp, "") for fp, n in sorted(self.counts.items(), key=lambda x: -x[1])
                if self.active and n >= MIN_PAGES and n >= MIN_SHARE * self.pages]

    def for_extraction(self) -> "SiteTemplate":
        """A small copy holding only the boilerplate lines: cheap to send to a worker process."""
        if not self.active:
            return SiteTemplate(pages=self.pages)
        if self._frequent is None:
            self._frequent = {fp for fp, n in self.counts.items() if n >= MIN_PAGES}
        counts, share = self.counts, MIN_SHARE * self.pages
        keep = {fp: counts[fp] for fp in self._frequent if counts[fp] >= share}
        return SiteTemplate(pages=self.pages, counts=keep)

    def mark_saved(self) -> None:
        self.new_pages = 0
        self.new_counts = {}

    def take_increments(self) -> "SiteTemplate":
        """The counts added since the last save, as a template of their own for
        :func:`save_template` (which can then run in another thread), and start anew."""
        increments = SiteTemplate(pages=self.pages, new_pages=self.new_pages, new_counts=self.new_counts,
                                  samples={fp: self.samples.get(fp, "") for fp in self.new_counts})
        self.mark_saved()
        return increments


def learn_from_page(template: SiteTemplate, article: dict) -> SiteTemplate:
    """Teach ``template`` one extracted page (an ``extract_article`` result); returns it.

    Both the paragraphs kept and the ones removed as boilerplate are counted, so a
    learned line keeps its count while it is being removed.
    """
    template.learn_lines(page_lines(article))
    return template


def page_lines(article: dict) -> list[tuple[int, str]]:
    """The lines of an extracted page a template learns: paragraphs kept and removed."""
    blocks = list(article.get("paragraphs") or (article.get("text") or "").split("\n\n"))
    blocks += article.get("boilerplate_removed") or []
    return line_fingerprints(blocks)


def load_template(conn, site: str) -> SiteTemplate:
    """The stored template of ``site`` (empty when the site is new)."""
    pages_row = conn.execute(select(schema.site_pages.c.pages).where(schema.site_pages.c.site == site)).first()
    template = SiteTemplate(pages=pages_row[0] if pages_row else 0)
    t = schema.site_templates
    for fp, pages, sample in conn.execute(select(t.c.fingerprint, t.c.pages, t.c.sample).where(t.c.site == site)):
        template.counts[fp] = pages
        if sample:
            template.samples[fp] = sample
    return template


def _upsert_increments(conn, table, key_names: list[str], rows: list[dict]) -> None:
    """Add each row's ``pages`` to the stored count (creating missing rows); rows have
    distinct keys.

    A save carries one row per line seen since the last one (~9 per page, most of them
    seen once). SQLite runs them as an executemany (in-process, cheap); on PostgreSQL,
    where an executemany still costs the server one execution per row, they go as one
    statement over arrays (``unnest``)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        names = list(rows[0])
        arrays = ", ".join("%%s::%s[]" % table.c[name].type.compile(dialect=conn.dialect) for name in names)
        sql = (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
               f"ON CONFLICT ({', '.join(key_names)}) DO UPDATE SET pages = {table.name}.pages + excluded.pages")
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(sql, [[row[name] for row in rows] for name in names])
        finally:
            cursor.close()
        return
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(index_elements=key_names,
                                          set_={"pages": table.c.pages + stmt.excluded.pages})
        conn.execute(stmt, rows)
        return
    for row in rows:
        where = [table.c[k] == row[k] for k in key_names]
        updated = conn.execute(update(table).where(*where).values(pages=table.c.pages + row["pages"])).rowcount
        if not updated:
            conn.execute(table.insert().values(**row))


def save_template(conn, site: str, template: SiteTemplate) -> None:
    """Add the template's counts since its last save to the stored ones."""
    if not template.new_pages and not template.new_counts:
        return
    if template.new_pages:
        _upsert_increments(conn, schema.site_pages, ["site"], [{"site": site, "pages": template.new_pages}])
    _upsert_increments(conn, schema.site_templates, ["site", "fingerprint"], [
        {"site": site, "fingerprint": fp, "pages": n, "sample": template.samples.get(fp, "")[:200]}
        for fp, n in template.new_counts.items()])
    before, after = template.pages - template.new_pages, template.pages
    if before // PRUNE_EVERY != after // PRUNE_EVERY:
        t = schema.site_templates
        conn.execute(delete(t).where(t.c.site == site, t.c.pages <= 1))
        logger.debug("site template %s: one-off lines pruned", site)
    template.mark_saved()
