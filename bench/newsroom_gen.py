"""A generated newsroom for the throughput benchmark: thousands of distinct articles in
many site templates, behind RSS and Atom feeds of 50 entries, served on loopback by a
small asyncio server in its own process.

Everything is a pure function of ``(articles, templates, seed, epoch)``: the benchmark,
the server process and the tests compute the same pages independently.

- **Articles** are made of sentences generated from patterns with many slots (people,
  organisations and places with synthetic names, topic nouns, numbers), so every body
  is distinct and two bodies share almost no word 4-shingles: dedupe keeps them all and
  near-duplicate detection does not cluster them.
- **Site templates** (``SiteTemplate``) carry realistic furniture: inline CSS and
  scripts, a JSON state blob, a mega-menu, breadcrumbs, ad slots, a newsletter box,
  "most read" and market widgets, related links, comments and a long footer. Site ``k``
  of ``T`` aims at ``30 + 90*k/(T-1)`` KB per page.
- **Feeds**: site ``s`` has ``ceil(n_s / 50)`` feeds, alternately RSS 2.0 (with
  ``content:encoded``, like WordPress) and Atom (summary only).

The server (``python -m bench.newsroom_gen serve``) pre-renders the per-site furniture
and the per-article parts once, then assembles each page with one ``bytes.join``; it
keeps connections alive and counts requests per path (``GET /_bench/requests``). It runs
in its own process so that its work is not charged to the crawler's process.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import html
import json
import logging
import random
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property

logger = logging.getLogger(__name__)

PLACEHOLDER = "http://newsroom.invalid"  # replaced by the server's base URL when served
PER_FEED = 50
DEFAULT_SEED = 20261129

# -- vocabulary ------------------------------------------------------------------------

FIRST_NAMES = (
    "Maria Jonas Amira Peter Sofia Daniel Leila Tomas Grace Victor Nadia Oliver Hannah Marco Ines Samuel "
    "Clara Ibrahim Elena Lukas Aisha Martin Julia Rafael Sara Henrik Chloe Andrei Mei Patrick Laura Omar "
    "Eva Felix Zainab Hugo Anna Kenji Ruth Mateo Ingrid Yusuf Paula Dmitri Alice Tariq Helen Pablo Nora "
    "Stefan Lucia Kofi Emma Arjun Lena Diego Rosa Bruno Fatima Erik Irene Joel Marta Simon Vera Ali"
).split()
SYLLABLES_A = "kes var tor mal bren dal fen gor hal jor kel lin mor nor pel quin ros sel tal ulf ven wil yar zan ber cor dun".split()
SYLLABLES_B = "vold ane holt dale mark stad berg wick ford mont ley sted ton ridge wood field more by gate haven".split()
ORG_KINDS = ("Group", "Holdings", "Authority", "Council", "Institute", "Bank", "Energy", "Logistics", "Partners",
             "Foundation", "Union", "Systems", "Capital", "Agency", "Labs", "Works", "Alliance", "Trust")
REGIONS = ("the northern provinces", "the coastal districts", "the capital region", "the eastern valley",
           "the southern islands", "the western plains", "the border towns", "the river delta",
           "the mountain counties", "the lake district", "the industrial belt", "the farming heartland")
ROLES = ("finance minister", "spokesperson", "chief executive", "mayor", "senior analyst", "professor",
         "union leader", "health commissioner", "chief economist", "police chief", "director", "chairwoman",
         "chairman", "prosecutor", "coach", "harbour master", "researcher", "governor", "judge", "ambassador")
NOUNS = (
    "budget pipeline vaccine election tariff harbour railway drought wildfire semiconductor reservoir bridge "
    "hospital pension strike merger lawsuit subsidy airport festival stadium refinery vineyard telescope "
    "satellite battery turbine wetland fishery curriculum mortgage inflation currency ceasefire treaty "
    "census museum library highway tunnel ferry glacier earthquake flood heatwave orchard factory mine "
    "shipyard startup algorithm privacy cyberattack blackout grid dam canal rainforest coral reef monsoon "
    "harvest tourism housing rent wages deficit bond audit referendum coalition parliament court verdict "
    "appeal investigation scandal protest boycott embargo sanction summit delegation inspection recall "
    "outbreak quarantine clinic nurse teacher exam scholarship patent license spectrum broadband reactor "
    "uranium hydrogen lithium copper wheat coffee cocoa timber cargo container tanker drone robot chip"
).split()
UNITS = ("tonnes", "households", "jobs", "passengers", "hectares", "megawatts", "beds", "students", "flights",
         "containers", "vehicles", "homes", "patients", "visitors", "barrels", "shares", "contracts", "acres")
PLURAL_PEOPLE = ("residents", "workers", "farmers", "commuters", "families", "pensioners", "students", "voters",
                 "nurses", "drivers", "fishermen", "shopkeepers", "engineers", "tenants", "teachers")
ADJECTIVES = (
    "regional federal unexpected ambitious controversial delayed temporary record modest sweeping fragile "
    "overdue costly popular disputed landmark emergency provisional cautious aggressive long-awaited "
    "experimental unprecedented bipartisan municipal quarterly annual informal confidential revised"
).split()
VERBS = (  # base, past, third person
    ("approve", "approved", "approves"), ("delay", "delayed", "delays"), ("reject", "rejected", "rejects"),
    ("expand", "expanded", "expands"), ("investigate", "investigated", "investigates"),
    ("cut", "cut", "cuts"), ("raise", "raised", "raises"), ("suspend", "suspended", "suspends"),
    ("review", "reviewed", "reviews"), ("fund", "funded", "funds"), ("block", "blocked", "blocks"),
    ("challenge", "challenged", "challenges"), ("restore", "restored", "restores"),
    ("announce", "announced", "announces"), ("postpone", "postponed", "postpones"),
    ("extend", "extended", "extends"), ("scrap", "scrapped", "scraps"), ("renegotiate", "renegotiated", "renegotiates"),
    ("overhaul", "overhauled", "overhauls"), ("defend", "defended", "defends"), ("back", "backed", "backs"),
    ("criticise", "criticised", "criticises"), ("double", "doubled", "doubles"), ("halve", "halved", "halves"),
)
STATES = ("on track", "far from settled", "years behind schedule", "worth every cent", "a mistake",
          "badly needed", "under enormous pressure", "in better shape than feared", "at a turning point",
          "too expensive to abandon", "the only realistic option", "not yet safe")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SECTIONS = ("World", "Politics", "Business", "Economy", "Science", "Health", "Climate", "Technology", "Sport",
            "Culture", "Opinion", "Local", "Education", "Travel", "Markets", "Energy", "Justice", "Transport")
CONNECTORS = ("Meanwhile,", "However,", "In a statement,", "Earlier this year,", "By contrast,", "At the same time,",
              "Critics say", "Supporters argue", "Last week,", "For now,", "Even so,", "In practice,")

PATTERNS = (
    "{person}, the {role} of {org}, said on {weekday} that the {noun} in {place} would {verb} by {pct} percent before {month}.",
    "Officials in {place} {verbed} the {adj} {noun} after {org} reported a {adj2} rise of {num} {unit}.",
    "{org} reported that {num} {unit} linked to the {noun} had been {verbed} in {place} since {month}.",
    "\"We believe the {noun} is {state},\" {person} told reporters in {place} on {weekday}.",
    "According to {org}, the {adj} {noun} affects {num} {people} across {region}.",
    "The {noun} plan was first {verbed} by {person} in {year}, when {org} still ran the {noun2} in {place}.",
    "{connector} {person} {verbs} the {noun2} deal, which {org} expects to cost {money} million over {small} years.",
    "Residents of {place} have waited {small} years for the {noun} to reach {region}, {person} said.",
    "A {adj} report by {org} found that {pct} percent of {people} in {place} rely on the {noun}.",
    "{person} of {org} warned that any attempt to {verb} the {noun} would hit {people} in {region} hardest.",
    "The {adj} {noun2} vote in {place} is expected on {weekday}, {day} {month}, after {small} rounds of talks.",
    "{connector} {num} {people} signed a petition asking {org} to {verb} the {noun} before the {noun2} season.",
    "Data from {org} show {unit} up {pct} percent in {place} and down {pct2} percent in {place2}.",
    "\"Nobody in {place} asked for a {adj} {noun},\" said {person}, a {role} who has followed the dossier since {year}.",
    "The {noun} dispute between {org} and {org2} has dragged on since {month} {year}.",
    "Engineers from {org} plan to {verb} the {noun} at {place} using {num} {unit} of {noun2}.",
    "{person} and {person2} are due to meet in {place} on {weekday} to discuss the {adj} {noun}.",
    "{connector} the {noun2} market in {place} {verbed_plain} {pct} percent, its {adj} move since {year}.",
    "Lawyers for {org} said the {noun} ruling in {place} could be appealed within {small} weeks.",
    "The {role} of {org}, {person}, called the {noun} figures for {region} \"{state}\".",
)
TITLE_PATTERNS = (
    "{Place} {Noun} plan {verbed} as {org} warns of {noun2} costs",
    "{org} to {verb} {noun} in {Place} after {adj} {noun2} report",
    "{Person} says {noun} in {Place} is {state}",
    "{Adj} {noun} vote splits {Place} as {org} backs {noun2}",
    "Inside the {noun} fight that divides {Place} and {Place2}",
    "{num} {unit} at stake as {org} and {org2} clash over {noun}",
    "Why {Place} wants to {verb} its {noun} before {month}",
    "{Person} of {org} quits over {noun} {noun2} dispute",
)

COMMENT_LINES = (
    "Great reporting, thanks for covering this.", "This has been going on for years in our town.",
    "Does anyone know when the consultation closes?", "The numbers in paragraph four do not add up.",
    "Finally some good news.", "I used to work there, and this is only half the story.",
    "Who is going to pay for all of this?", "Please do a follow-up in six months.",
    "Typical: announce first, plan later.", "My family has lived next to the site since the seventies.",
)


def _surname(rng: random.Random) -> str:
    return (rng.choice(SYLLABLES_A) + rng.choice(SYLLABLES_B)).capitalize()


def _pools(seed: int) -> tuple[list[str], list[str], list[str]]:
    """People (~4,000), organisations (~1,500) and places (~800) with synthetic names."""
    rng = random.Random(f"{seed}:pools")
    people = sorted({f"{rng.choice(FIRST_NAMES)} {_surname(rng)}" for _ in range(5000)})
    orgs = sorted({f"{_surname(rng)} {rng.choice(ORG_KINDS)}" for _ in range(2000)})
    places = sorted({_surname(rng) + rng.choice(("", "", " Bay", " Falls", " Heights", "port", " Springs"))
                     for _ in range(1200)})
    return people, orgs, places


# -- articles --------------------------------------------------------------------------


@dataclass(frozen=True)
class Article:
    index: int
    site: int
    feed: str
    path: str
    title: str
    published: datetime
    author: str
    section: str


class Vocabulary:
    def __init__(self, seed: int):
        self.people, self.orgs, self.places = _pools(seed)

    def slots(self, rng: random.Random, cast: dict) -> dict:
        """Slot values for one sentence; ``cast`` holds the article's recurring names."""
        pick = rng.choice
        verb = pick(VERBS)

        def person():
            return pick(cast["people"]) if rng.random() < 0.6 else pick(self.people)

        def org():
            return pick(cast["orgs"]) if rng.random() < 0.6 else pick(self.orgs)

        def place():
            return pick(cast["places"]) if rng.random() < 0.6 else pick(self.places)

        noun = pick(cast["nouns"]) if rng.random() < 0.5 else pick(NOUNS)
        return {
            "person": person(), "person2": person(), "role": pick(ROLES), "org": org(), "org2": org(),
            "place": place(), "place2": place(), "region": pick(REGIONS), "noun": noun, "noun2": pick(NOUNS),
            "adj": pick(ADJECTIVES), "adj2": pick(ADJECTIVES), "verb": verb[0], "verbed": verb[1],
            "verbed_plain": pick(("rose", "fell", "slipped", "jumped", "climbed", "dropped")),
            "verbs": verb[2], "state": pick(STATES), "month": pick(MONTHS), "weekday": pick(WEEKDAYS),
            "day": rng.randint(1, 28), "year": rng.randint(1990, 2025), "num": f"{rng.randint(2, 98_000):,}",
            "pct": rng.randint(2, 95), "pct2": rng.randint(2, 60), "small": rng.randint(2, 12),
            "money": rng.randint(3, 9_000), "unit": pick(UNITS), "people": pick(PLURAL_PEOPLE),
            "connector": pick(CONNECTORS),
        }

    def cast(self, rng: random.Random) -> dict:
        return {"people": rng.sample(self.people, 4), "orgs": rng.sample(self.orgs, 3),
                "places": rng.sample(self.places, 3), "nouns": rng.sample(NOUNS, 3)}

    def sentence(self, rng: random.Random, cast: dict) -> str:
        text = rng.choice(PATTERNS).format(**self.slots(rng, cast))
        return text[0].upper() + text[1:]

    def title(self, rng: random.Random, cast: dict) -> str:
        slots = self.slots(rng, cast)
        slots.update(Place=cast["places"][0], Place2=slots["place2"], Person=cast["people"][0],
                     Noun=cast["nouns"][0].capitalize(), Adj=slots["adj"].capitalize(), org=cast["orgs"][0])
        text = rng.choice(TITLE_PATTERNS).format(**slots)
        return text[0].upper() + text[1:]


class Newsroom:
    """The generated newsroom: ``articles`` articles over ``templates`` sites."""

    def __init__(self, articles: int = 5000, templates: int = 20, seed: int = DEFAULT_SEED,
                 epoch: datetime | None = None):
        if articles < 1 or templates < 1:
            raise ValueError("need at least one article and one template")
        self.count = articles
        self.templates = templates
        self.seed = seed
        if epoch is None:
            epoch = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        self.epoch = epoch
        self.vocabulary = Vocabulary(seed)
        self.sites = [SiteTemplate(k, templates, seed) for k in range(templates)]

    # -- catalogue ----------------------------------------------------------------------

    def _cast(self, index: int) -> tuple[random.Random, dict]:
        rng = random.Random(self.seed * 1_000_003 + index)
        return rng, self.vocabulary.cast(rng)

    @cached_property
    def articles(self) -> list[Article]:
        out = []
        for index in range(self.count):
            rng, cast = self._cast(index)
            site = index % self.templates
            rank = index // self.templates
            title = self.vocabulary.title(rng, cast)
            published = self.epoch - timedelta(minutes=5 * index + 1)
            slug = "-".join(w for w in "".join(c if c.isalnum() else " " for c in title.lower()).split()[:8])
            path = f"/{self.sites[site].slug}/{published:%Y/%m/%d}/{slug}-{index}.html"
            feed = f"{self.sites[site].slug}-{rank // PER_FEED}"
            out.append(Article(index, site, feed, path, title, published, rng.choice(cast["people"]),
                               rng.choice(SECTIONS)))
        return out

    @cached_property
    def feeds(self) -> dict[str, list[Article]]:
        """Feed name -> its entries, newest first."""
        feeds: dict[str, list[Article]] = {}
        for article in self.articles:
            feeds.setdefault(article.feed, []).append(article)
        return feeds

    def feed_kind(self, name: str) -> str:
        return "rss" if int(name.rsplit("-", 1)[1]) % 2 == 0 else "atom"

    def feed_paths(self) -> list[str]:
        return [f"/feeds/{name}.{self.feed_kind(name)}" for name in self.feeds]

    # -- content ------------------------------------------------------------------------

    def paragraphs(self, index: int) -> list[str]:
        rng, cast = self._cast(index)
        rng = random.Random(self.seed * 7_000_001 + index)
        sentence = self.vocabulary.sentence
        return [" ".join(sentence(rng, cast) for _ in range(rng.randint(2, 4)))
                for _ in range(rng.randint(8, 15))]

    def summary(self, paragraphs: list[str]) -> str:
        return paragraphs[0].split(". ")[0].rstrip(".") + "."

    def page(self, index: int, base_url: str = PLACEHOLDER) -> bytes:
        """The full HTML page of article ``index``."""
        data = b"".join(self.sites[self.articles[index].site].assemble(self.article_parts(index)))
        return data.replace(PLACEHOLDER.encode(), base_url.encode()) if base_url != PLACEHOLDER else data

    def url(self, index: int, base_url: str = PLACEHOLDER) -> str:
        return base_url + self.articles[index].path

    def article_parts(self, index: int) -> dict[str, bytes]:
        """The per-article parts of a page (head, article, related, comments)."""
        article = self.articles[index]
        site = self.sites[article.site]
        paragraphs = self.paragraphs(index)
        rng = random.Random(self.seed * 3_000_017 + index)
        same_site = self.articles[article.site::self.templates]
        related = [a for a in rng.sample(same_site, min(len(same_site), 9)) if a.index != index][:8]
        return site.article_parts(article, paragraphs, self.summary(paragraphs), related, rng)

    def feed(self, name: str, base_url: str = PLACEHOLDER) -> tuple[str, bytes]:
        """(content type, body) of a feed."""
        entries = self.feeds[name]
        site = self.sites[entries[0].site]
        kind = self.feed_kind(name)
        esc = html.escape
        parts = []
        if kind == "rss":
            for a in entries:
                paragraphs = self.paragraphs(a.index)
                content = "".join(f"<p>{esc(p)}</p>" for p in paragraphs[:4])
                parts.append(
                    f"<item><title>{esc(a.title)}</title><link>{base_url}{a.path}</link>"
                    f'<guid isPermaLink="false">{site.slug}-{a.index}</guid>'
                    f"<pubDate>{email.utils.format_datetime(a.published)}</pubDate>"
                    f"<dc:creator>{esc(a.author)}</dc:creator><category>{a.section}</category>"
                    f"<description>{esc(self.summary(paragraphs))}</description>"
                    f"<content:encoded><![CDATA[{content}]]></content:encoded></item>\n")
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
                    'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                    f"<title>{esc(site.name)} — {name}</title><link>{base_url}/{site.slug}/</link>"
                    f"<description>{esc(site.name)}</description><language>en</language>\n"
                    + "".join(parts) + "</channel></rss>\n")
            return "application/rss+xml; charset=utf-8", body.encode("utf-8")
        for a in entries:
            summary = self.summary(self.paragraphs(a.index))
            stamp = a.published.isoformat()
            parts.append(
                f"<entry><id>tag:{site.slug},2026:{a.index}</id><title>{esc(a.title)}</title>"
                f'<link rel="alternate" type="text/html" href="{base_url}{a.path}"/>'
                f"<published>{stamp}</published><updated>{stamp}</updated>"
                f"<author><name>{esc(a.author)}</name></author>"
                f'<category term="{a.section}"/><summary>{esc(summary)}</summary></entry>\n')
        updated = entries[0].published.isoformat()
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
                f"<title>{esc(site.name)} — {name}</title><id>tag:{site.slug},2026:{name}</id>"
                f'<link rel="self" href="{base_url}/feeds/{name}.atom"/><updated>{updated}</updated>\n'
                + "".join(parts) + "</feed>\n")
        return "application/atom+xml; charset=utf-8", body.encode("utf-8")


# -- site templates --------------------------------------------------------------------

CSS_PROPS = ("margin:0 auto", "padding:4px 8px", "display:flex", "align-items:center", "color:#1a1a1a",
             "font-size:14px", "line-height:1.5", "border-bottom:1px solid #e3e3e3", "position:relative",
             "background:#fafafa", "text-transform:uppercase", "letter-spacing:.02em", "gap:12px",
             "max-width:1180px", "overflow:hidden", "white-space:nowrap", "font-weight:700", "z-index:10",
             "grid-template-columns:repeat(3,1fr)", "transition:opacity .2s ease-in-out")
WIDGETS = ("Weather", "Markets", "Most read", "Newsletter", "Podcasts", "Puzzles", "Video", "Live blog")


class SiteTemplate:
    """One site's furniture, pre-rendered: everything on its pages that is not the article."""

    def __init__(self, k: int, count: int, seed: int):
        self.k = k
        rng = random.Random(f"{seed}:site:{k}")
        self.slug = f"site{k:02d}"
        self.name = f"The {_surname(rng)} {rng.choice(('Courier', 'Herald', 'Chronicle', 'Gazette', 'Post', 'Tribune', 'Observer', 'Daily', 'Ledger', 'Times'))}"
        self.target_kb = 30 + (90 * k / (count - 1) if count > 1 else 0)
        self.style = k % 4  # markup flavour of the article container
        self.cls = rng.choice(("c", "nw", "st", "pg", "x", "ui", "l"))
        fixed = max(8_000, int(self.target_kb * 1024) - 9_500)  # the article itself is ~8-16 KB
        self.head_top, self.head_bottom, self.header, self.sidebar, self.footer = self._furniture(rng, fixed)

    def _css(self, rng: random.Random, size: int) -> str:
        rules, total = [], 0
        while total < size:
            props = ";".join(rng.sample(CSS_PROPS, rng.randint(2, 6)))
            rule = f".{self.cls}-{rng.randint(0, 99999):05d} .{self.cls}__{rng.choice(WIDGETS).split()[0].lower()}{{{props}}}\n"
            rules.append(rule)
            total += len(rule)
        return "".join(rules)

    def _js(self, rng: random.Random, size: int) -> str:
        chunks, total, n = [], 0, 0
        while total < size:
            n += 1
            chunk = (f"function {self.cls}{n}(a,b){{var x=a+b*{rng.randint(2, 99)};if(x>{rng.randint(3, 999)})"
                     f"{{return document.querySelector('.{self.cls}-{rng.randint(0, 99999):05d}')}}"
                     f"window.dataLayer=window.dataLayer||[];dataLayer.push({{event:'w{n}',v:x}});return x}}\n")
            chunks.append(chunk)
            total += len(chunk)
        return "".join(chunks)

    def _state(self, rng: random.Random, size: int) -> str:
        items, total = [], 0
        while total < size:
            item = {"id": rng.randint(1, 10**9), "slot": f"ad-{rng.randint(1, 40)}", "sizes": [[300, 250], [728, 90]],
                    "targeting": {"sec": rng.choice(SECTIONS).lower(), "kw": rng.sample(NOUNS, 3)}}
            text = json.dumps(item)
            items.append(text)
            total += len(text) + 1
        return '{"ads":[' + ",".join(items) + "]}"

    def _links(self, rng: random.Random, count: int, prefix: str) -> str:
        return "".join(f'<li class="{self.cls}-nav__item"><a href="/{self.slug}/{prefix}/{rng.choice(SECTIONS).lower()}'
                       f'-{rng.randint(1, 999)}">{rng.choice(SECTIONS)} {rng.choice(NOUNS)}</a></li>'
                       for _ in range(count))

    def _furniture(self, rng: random.Random, fixed: int) -> tuple[str, str, str, str, str]:
        css = self._css(rng, int(fixed * 0.30))
        js = self._js(rng, int(fixed * 0.25))
        state = self._state(rng, int(fixed * 0.10))
        nav_links = max(30, int(fixed * 0.15) // 110)
        footer_links = max(20, int(fixed * 0.10) // 110)
        head_top = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                    '<meta name="viewport" content="width=device-width, initial-scale=1">')
        head_bottom = (
            "".join(f'<link rel="preload" href="/static/{self.slug}/font-{i}.woff2" as="font" crossorigin>'
                    for i in range(4))
            + f'<link rel="stylesheet" href="/static/{self.slug}/main.css">'
            + f"<style>{css}</style>"
            + f"<script>{js}</script>"
            + f'<script id="__STATE__" type="application/json">{state}</script>'
            + '<script async src="/static/ads/loader.js"></script></head>\n')
        header = (
            f'<body class="{self.cls}-body"><div id="cookie-banner" class="{self.cls}-consent">We use cookies '
            f'to improve your experience and to show you relevant advertising. <button>Accept all</button> '
            f'<button>Manage preferences</button></div>'
            f'<header class="{self.cls}-header"><a class="{self.cls}-logo" href="/{self.slug}/">{html.escape(self.name)}</a>'
            f'<form role="search" action="/{self.slug}/search"><input name="q" placeholder="Search"></form>'
            f'<nav class="{self.cls}-nav" aria-label="Sections"><ul>{self._links(rng, nav_links, "section")}</ul></nav>'
            f'<div class="{self.cls}-ticker">Breaking: markets open higher · Live: {rng.choice(NOUNS)} updates</div>'
            f'</header><div class="ad ad-leaderboard" data-slot="top"><span>Advertisement</span></div>\n')
        widgets = "".join(
            f'<section class="{self.cls}-widget {self.cls}-widget--{w.split()[0].lower()}"><h3>{w}</h3><ul>'
            + "".join(f'<li><a href="/{self.slug}/{w.split()[0].lower()}/{rng.randint(1, 9999)}">'
                      f'{rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS)} {rng.choice(("update", "explained", "live", "in charts"))}</a></li>'
                      for _ in range(6)) + "</ul></section>"
            for w in rng.sample(WIDGETS, 4))
        sidebar = (f'<aside class="{self.cls}-sidebar"><div class="ad ad-mpu" data-slot="side"><span>Advertisement'
                   f'</span></div>{widgets}</aside>\n')
        footer = (
            f'<footer class="{self.cls}-footer"><div class="{self.cls}-newsletter"><h3>Get the morning briefing</h3>'
            f'<p>Sign up for our newsletter and never miss a story.</p><input type="email" placeholder="Email">'
            f'<button>Subscribe</button></div><ul class="{self.cls}-footer__links">{self._links(rng, footer_links, "info")}'
            f'</ul><p>© 2026 {html.escape(self.name)}. All rights reserved. Terms · Privacy · Cookie settings · '
            f'Contact · Advertise with us</p></footer>'
            f'<script>window.__consent={{"v":2}};{self._js(rng, 1500)}</script></body></html>\n')
        return head_top, head_bottom, header, sidebar, footer

    def article_parts(self, article: Article, paragraphs: list[str], summary: str, related: list[Article],
                      rng: random.Random) -> dict[str, bytes]:
        esc = html.escape
        url = f"{PLACEHOLDER}{article.path}"
        stamp = article.published.isoformat()
        ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": article.title,
                         "datePublished": stamp, "dateModified": stamp, "mainEntityOfPage": url,
                         "author": [{"@type": "Person", "name": article.author}],
                         "publisher": {"@type": "Organization", "name": self.name},
                         "articleSection": article.section, "description": summary})
        head = (f"<title>{esc(article.title)} | {esc(self.name)}</title>"
                f'<meta name="description" content="{esc(summary)}">'
                f'<link rel="canonical" href="{url}">'
                f'<meta property="og:type" content="article"><meta property="og:title" content="{esc(article.title)}">'
                f'<meta property="og:url" content="{url}"><meta property="og:site_name" content="{esc(self.name)}">'
                f'<meta property="article:published_time" content="{stamp}">'
                f'<meta name="author" content="{esc(article.author)}">'
                f'<script type="application/ld+json">{ld}</script>')
        body = []
        for i, text in enumerate(paragraphs):
            body.append(f"<p>{esc(text)}</p>")
            if i % 4 == 2:
                body.append(f'<div class="ad ad-inline" data-slot="inline-{i}"><span>Advertisement</span></div>')
            if i == 5 and related:
                body.append(f'<aside class="{self.cls}-readmore"><strong>Read more:</strong> '
                            f'<a href="{related[0].path}">{esc(related[0].title)}</a></aside>')
        byline = (f'<div class="{self.cls}-byline">By <a rel="author" href="/{self.slug}/authors/'
                  f'{article.author.lower().replace(" ", "-")}">{esc(article.author)}</a> · '
                  f'<time datetime="{stamp}">{article.published:%d %B %Y, %H:%M} UTC</time></div>')
        crumbs = (f'<ol class="{self.cls}-breadcrumbs"><li><a href="/{self.slug}/">Home</a></li>'
                  f'<li><a href="/{self.slug}/{article.section.lower()}/">{article.section}</a></li></ol>')
        figure = (f'<figure><img src="/static/{self.slug}/img/{article.index}.jpg" width="1200" height="675" '
                  f'alt="{esc(article.title)}"><figcaption>Photo: {esc(self.name)} archive</figcaption></figure>')
        share = ('<div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> '
                 '<a href="#">Email</a></div>')
        inner = f"<h1>{esc(article.title)}</h1>{byline}{figure}{share}{''.join(body)}"
        if self.style == 0:
            main = f'<article class="{self.cls}-article">{inner}</article>'
        elif self.style == 1:
            main = f'<div class="story-body {self.cls}-story">{inner}</div>'
        elif self.style == 2:
            main = f'<main id="content"><section class="{self.cls}-content">{inner}</section></main>'
        else:
            main = f'<article><div class="entry-content">{inner}</div></article>'
        links = "".join(f'<li><a href="{a.path}">{esc(a.title)}</a></li>' for a in related)
        related_html = f'<section class="{self.cls}-related"><h2>Related stories</h2><ul>{links}</ul></section>'
        comments = []
        for c in range(rng.randint(0, 12)):
            comments.append(f'<li class="comment"><span class="comment-author">{_surname(rng).lower()}{rng.randint(1, 99)}'
                            f'</span><p>{rng.choice(COMMENT_LINES)} {rng.choice(COMMENT_LINES)}</p></li>')
        comments_html = (f'<section id="comments" class="comments"><h2>{len(comments)} comments</h2>'
                         f'<ol>{"".join(comments)}</ol></section>')
        return {"head": head.encode("utf-8"), "crumbs": crumbs.encode("utf-8"), "main": main.encode("utf-8"),
                "related": related_html.encode("utf-8"), "comments": comments_html.encode("utf-8")}

    @cached_property
    def _encoded(self) -> dict[str, bytes]:
        return {name: getattr(self, name).encode("utf-8")
                for name in ("head_top", "head_bottom", "header", "sidebar", "footer")}

    def assemble(self, parts: dict[str, bytes]) -> list[bytes]:
        f = self._encoded
        return [f["head_top"], parts["head"], f["head_bottom"], f["header"], b'<div class="layout">',
                parts["crumbs"], parts["main"], parts["related"], parts["comments"], f["sidebar"], b"</div>",
                f["footer"]]


# -- the server ------------------------------------------------------------------------

ROBOTS = b"User-agent: *\nDisallow: /private/\n"


class _Site:
    """What the server holds in memory: pre-rendered pieces, assembled per request."""

    def __init__(self, room: Newsroom):
        self.room = room
        self.parts = {a.path: (a.site, room.article_parts(a.index)) for a in room.articles}
        self.base = PLACEHOLDER.encode()
        self.feed_cache: dict[str, tuple[str, bytes]] = {}
        self.requests: Counter[str] = Counter()

    def set_base(self, base_url: str) -> None:
        self.base_url = base_url
        for name in self.room.feeds:
            self.feed_cache[f"/feeds/{name}.{self.room.feed_kind(name)}"] = self.room.feed(name, base_url)
        base = base_url.encode()
        for path, (site, parts) in self.parts.items():
            self.parts[path] = (site, {k: v.replace(self.base, base) for k, v in parts.items()})

    def answer(self, path: str) -> tuple[int, str, bytes]:
        self.requests[path] += 1
        parts = self.parts.get(path)
        if parts is not None:
            return 200, "text/html; charset=utf-8", b"".join(self.room.sites[parts[0]].assemble(parts[1]))
        feed = self.feed_cache.get(path)
        if feed is not None:
            return 200, feed[0], feed[1]
        if path == "/robots.txt":
            return 200, "text/plain", ROBOTS
        if path == "/_bench/requests":
            return 200, "application/json", json.dumps(self.requests).encode()
        return 404, "text/plain", b"not found"


class _HTTP(asyncio.Protocol):
    def __init__(self, site: _Site):
        self.site = site
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            lines = head.split(b"\r\n")
            try:
                method, target, _version = lines[0].split(b" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            path = target.split(b"?", 1)[0].decode("latin-1")
            status, content_type, body = self.site.answer(path)
            close = headers.get(b"connection", b"").lower() == b"close"
            reason = b"OK" if status == 200 else b"Not Found"
            response = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n"
                        % (status, reason, content_type.encode(), len(body), b"close" if close else b"keep-alive"))
            self.transport.write(response if method == b"HEAD" else response + body)
            if close:
                self.transport.close()
                return


async def _serve(room: Newsroom, host: str, port: int) -> None:
    site = _Site(room)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _HTTP(site), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    site.set_base(f"http://{host}:{bound}")
    print(f"READY http://{host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.newsroom_gen",
                                     description="Serve (or describe) the generated newsroom.")
    parser.add_argument("command", choices=("serve", "describe"))
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--epoch", help="ISO time the newest article precedes (default: today 00:00 UTC)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    epoch = datetime.fromisoformat(args.epoch) if args.epoch else None
    room = Newsroom(args.articles, args.templates, args.seed, epoch)
    if args.command == "describe":
        sizes = [len(room.page(a.index)) for a in room.articles[: room.templates * 3]]
        feeds = [len(room.feed(name)[1]) for name in list(room.feeds)[:4]]
        print(json.dumps({"articles": room.count, "templates": room.templates, "feeds": len(room.feeds),
                          "page_kb": [round(s / 1024, 1) for s in sizes], "feed_kb": [round(s / 1024, 1) for s in feeds]}))
        return 0
    try:
        asyncio.run(_serve(room, "127.0.0.1", args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
