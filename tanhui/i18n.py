"""Message catalogues: Simplified Chinese first, English second.

Source strings (gettext msgids) are English; ``tanhui/locale/zh_CN/LC_MESSAGES/messages.po`` holds
the Chinese. Catalogues are read with Babel at start, so there is no compile step to forget.
Extract new strings with ``pybabel extract -F babel.cfg -o messages.pot .`` and merge with
``pybabel update``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "zh-CN"
SUPPORTED_LOCALES = ("zh-CN", "en")
LOCALE_COOKIE = "tanhui_lang"
_CATALOGUE_FOLDERS = {"zh-CN": "zh_CN", "en": "en"}


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now (translated where shown)."""
    return message


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def _catalogue(locale: str) -> dict[str, str]:
    folder = _CATALOGUE_FOLDERS.get(locale)
    if folder is None:
        return {}
    path = LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=folder)
    return {
        str(message.id): str(message.string)
        for message in catalogue
        if message.id and isinstance(message.string, str) and message.string and not message.fuzzy
    }


def gettext(message: str, locale: str = DEFAULT_LOCALE) -> str:
    """``message`` in ``locale``; the English source when no translation exists."""
    return _catalogue(locale).get(message, message)


def translate(message: str, locale: str = DEFAULT_LOCALE, /, **params: object) -> str:
    """Translate, then fill ``{placeholders}``; a missing parameter leaves the text readable.
    (``message`` and ``locale`` are positional-only, so an error's own ``{locale}`` parameter
    fills its text instead of answering 500.)"""
    text = gettext(message, locale)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return message.format_map(_Lenient(params))


class _Lenient(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def both(message: str, **params: object) -> dict[str, str]:
    """The message in every supported locale, e.g. for problem details read by people."""
    return {locale: translate(message, locale, **params) for locale in SUPPORTED_LOCALES}


def negotiate(accept_language: str | None, cookie: str | None = None) -> str:
    """The locale to answer in: the language cookie wins, then Accept-Language, then zh-CN."""
    if cookie in SUPPORTED_LOCALES:
        return cookie
    if not accept_language:
        return DEFAULT_LOCALE
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for piece in pieces[1:]:
            if piece.strip().startswith("q="):
                try:
                    quality = float(piece.strip()[2:])
                except ValueError:
                    quality = 0.0
        weighted.append((-quality, position, tag))
    for _quality, _position, tag in sorted(weighted):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE
