"""Generic boilerplate lines that generic extractors keep: ad labels, share bars,
"Read more"/"Lire aussi" teasers, newsletter and cookie prompts, comment forms, photo
credits, "Source link", trailing tag lists, date and weather widgets.

Only short paragraphs are judged (a real paragraph that merely mentions "newsletter"
is long); the rules are multilingual (en, fr, de, es, it, pt, ru).
"""

from __future__ import annotations

import re

MAX_BOILERPLATE_CHARS = 220

_AD_LABEL = re.compile(
    r"^[-–—\s]*(advertisement|advertising|sponsored( content)?|ad|ads|anzeige|werbung|publicit[ée]|"
    r"publicidad|pubblicit[àa]|publicidade|реклама|spot_img|story continues below( advertisement)?|"
    r"article continues below( advertisement)?|continue reading below|scroll to continue( with content)?)"
    r"[-–—\s]*(spot_img)*$", re.I)

_LABEL_ONLY = re.compile(
    r"^(share|share this( article| story| post)?|share on \w+|partager|partagez|teilen|compartir|condividi|"
    r"compartilhe|поделиться|tweet|e-?mail|print|copy link|copy|link copied|whatsapp|facebook|twitter|"
    r"linkedin|pinterest|reddit|telegram|vk|flipboard|source link|tags?|mots[- ]cl[ée]s|schlagworte|"
    r"etiquetas|теги|related( news| articles| stories| posts)?|latest( news)?|most (read|popular|viewed)|"
    r"trending( now)?|recommended( for you)?|top stories|more (from|on) .{1,40}|you may also like|"
    r"you might also like|sur le même sujet|à lire aussi|lire aussi|lire la suite|a lire aussi|"
    r"dans la même rubrique|les plus lus|derni[èe]res? (actualit[ée]s|infos|news)|weitere artikel|"
    r"mehr zum thema|das könnte sie auch interessieren|noticias relacionadas|lo m[áa]s le[íi]do|"
    r"te puede interesar|читайте также|похожие новости|последние новости|comments?|"
    r"\d+ comments?|leave a (comment|reply)|laisser un commentaire|laissez un commentaire|"
    r"kommentar schreiben|deja un comentario|(show|load) (more )?comments|read more|read next|"
    r"continue reading|next article|previous article|article suivant|article précédent|"
    r"don'?t miss|must read|editor'?s picks?|(the )?[\w'’ ]{1,30} newsletter|follow us( on .{1,30})?|suivez-nous( sur .{1,30})?|folgen sie uns( auf .{1,30})?|síguenos( en .{1,30})?|"
    r"image|photo|video|gallery|listen|listen to this article|advertisement)\s*[:.!]?$",
    re.I)

_LABEL_PREFIX = re.compile(
    r"^(read more|read also|also read|related|recommended|see also|see more|more:|watch:|listen:|lire aussi|"
    r"à lire aussi|a lire aussi|à voir aussi|lesen sie auch|lesen sie mehr|mehr dazu|auch interessant|"
    r"lee también|leer más|ver también|te puede interesar|leggi anche|leia também|leia mais|"
    r"читайте также|смотрите также|подробнее)\b\s*[:>»|-]", re.I)

_PROMPT = re.compile(
    r"(sign up (for|to) (our|the) .{0,40}newsletter|subscribe to (our|the) .{0,40}newsletter|"
    r"get (our|the) .{0,40}newsletter|inscrivez-vous (à|a) (notre|la) .{0,30}newsletter|"
    r"abonnez-vous (à|a) (notre|la) newsletter|newsletter abonnieren|melden sie sich .{0,40}newsletter an|"
    r"suscr[íi]bete (a|al) (nuestro|nuestra|la) .{0,30}(newsletter|bolet[íi]n)|"
    r"(we|this (site|website)) uses? cookies|nous utilisons des cookies|wir verwenden cookies|"
    r"utilizamos cookies|accept (all )?cookies|your email address will not be published|"
    r"votre adresse (e-)?mail ne sera pas publi[ée]e|required fields are marked|"
    r"save my name, email,? and website|enregistrer mon nom, mon e-mail|"
    r"s'il vous pla[îi]t entrez votre|please enter your (comment|name|email)|"
    r"you have entered an incorrect email|vous avez entr[ée] une adresse e-?mail incorrecte|"
    r"by submitting this form you agree|all rights reserved|tous droits r[ée]serv[ée]s|"
    r"alle rechte vorbehalten|todos los derechos reservados|все права защищены|"
    r"click here to (subscribe|sign up|read)|download (our|the) app|"
    r"this article (was|has been) (originally )?(published|reproduced)|^syndicated (from|by) |"
    r"^(this|the) (article|story|post) (originally|first) (appeared|ran) (on|in|at) |"
    r"have a (news )?tip\?|contact us at|log in to comment|to comment, please|"
    r"^(e-?mail|follow|contact) .{1,80}(@\w|on twitter|on facebook))", re.I)

# A literal that every match of a _PROMPT alternative contains (lower case), or starts with
# (the ^ alternatives): on ASCII text, where re.I is plain ASCII case folding, a line with
# none of them cannot match, and the unanchored search (~50 us a line) is skipped.
_PROMPT_WORDS = ("newsletter", "suscr", "cookies", "will not be published", "mail ne sera pas publi",
                 "required fields are marked", "save my name, email", "enregistrer mon nom, mon e-mail",
                 " entrez votre", "please enter your ", "you have entered an incorrect email",
                 "vous avez entr", "by submitting this form you agree", "all rights reserved",
                 "tous droits r", "alle rechte vorbehalten", "todos los derechos reservados",
                 "click here to ", "download ", "this article ", "tip?", "contact us at",
                 "log in to comment", "to comment, please")  # "все права защищены": never ASCII
_PROMPT_STARTS = ("syndicated ", "this ", "the ", "email ", "e-mail ", "follow ", "contact ")


def _may_prompt(text: str) -> bool:
    """False only when ``_PROMPT.search(text)`` cannot match."""
    if not text.isascii():
        return True
    lower = text.lower()
    return lower.startswith(_PROMPT_STARTS) or any(word in lower for word in _PROMPT_WORDS)


_CREDIT = re.compile(
    r"^((photo|image|picture|foto|bild|fotograf[íi]a|illustration|video|credit|crédit|source|quelle|fuente)s?"
    r"( credit)?\s*(:|©|by\b)|©|\(c\)\s|copyright\b|\(?(getty images|afp|reuters|ap photo|shutterstock|"
    r"epa|dpa|istock)[^a-z]{0,6}(photo|via .{1,30})?\)?$)", re.I)

_DATE_WIDGET = re.compile(
    r"^((lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lunes|martes|"
    r"mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo)[, ]+)?"
    r"(\d{1,2}[ .]+)?([a-zà-ÿäöü]{3,10}\.?[ ]+)?(\d{1,2}(st|nd|rd|th|er)?,?[ ]+)?(19|20)\d{2}"
    r"([ ,]+\d{1,2}[:h]\d{2}( ?[ap]m)?)?$", re.I)
_WEATHER = re.compile(r"^-?\d{1,2}([.,]\d)?\s*°?\s*[CF]$")
_ONLY_SYMBOLS = re.compile(r"^\W+$")  # "* * *", "•"; an AP-style "___" separator is kept


def is_boilerplate(text: str) -> bool:
    """Whether one paragraph, on its own, is page furniture rather than article text."""
    if len(text) > MAX_BOILERPLATE_CHARS:
        return False
    if _ONLY_SYMBOLS.match(text):
        return True
    return bool(_AD_LABEL.match(text) or _LABEL_ONLY.match(text) or _LABEL_PREFIX.match(text)
                or (_may_prompt(text) and _PROMPT.search(text)) or _CREDIT.match(text) or _DATE_WIDGET.match(text)
                or _WEATHER.match(text))


def remove_boilerplate(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    """(kept, removed): generic furniture dropped; a trailing tag list goes with its label."""
    kept: list[str] = []
    removed: list[str] = []
    for index, text in enumerate(paragraphs):
        if is_boilerplate(text):
            removed.append(text)
            # "Tags" / "Mots-clés" label: the list that follows it closes the page too.
            if (index >= len(paragraphs) - 3
                    and re.match(r"^(tags?|mots[- ]cl[ée]s|schlagworte|etiquetas|теги)\s*:?$", text, re.I)):
                removed.extend(paragraphs[index + 1:])
                break
            continue
        kept.append(text)
    return kept, removed
