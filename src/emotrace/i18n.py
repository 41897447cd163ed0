"""The languages of what clinicians read: the web page and the session reports (HTML and PDF).

English is the source text, gettext-style: code says ``tr("Face visible")`` and reads as the page
does. Every other language has one catalog, ``emotrace/locales/<lang>.json``, mapping the English
text to its translation; the server serves the same file to the page (``/i18n/<lang>.json``), so
page and report never disagree. Text with values uses ``{name}`` placeholders. Numbers and dates
are written the language's way (``0,42`` and ``07/12/2026`` in Spanish). Command-line messages
stay English.
"""

from __future__ import annotations

import json
import time
from functools import cache
from importlib import resources

from emotrace.errors import InputError

__all__ = ["LANGUAGES", "N_", "Translator", "catalog", "check_language", "translator"]

#: The languages a page or report can be shown in, with their own names.
LANGUAGES = {"en": "English", "es": "Español"}


def N_(text: str) -> str:
    """``text`` unchanged: marks English text that is translated later, where it is shown
    (``tr(LABELS[key])``), so the catalog checks find it."""
    return text


def check_language(lang: str) -> str:
    """``lang`` when emotrace speaks it, else a one-line :class:`InputError`."""
    if lang not in LANGUAGES:
        known = ", ".join(LANGUAGES)
        raise InputError(f"unknown language {lang!r}: choose one of {known}")
    return lang


@cache
def catalog(lang: str) -> dict[str, str]:
    """The translations of one language (empty for English, the source)."""
    check_language(lang)
    if lang == "en":
        return {}
    text = (resources.files("emotrace") / "locales" / f"{lang}.json").read_text("utf-8")
    loaded: dict[str, str] = json.loads(text)
    return loaded


class Translator:
    """Text, numbers and dates in one language; ``tr("...")`` is the text."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = check_language(lang)
        self._catalog = catalog(lang)
        #: English text asked for that has no translation (tests read it).
        self.missing: set[str] = set()

    def __call__(self, text: str, **params: object) -> str:
        """``text`` in this language, its ``{name}`` placeholders filled from ``params``."""
        out = text
        if self.lang != "en":
            if text in self._catalog:
                out = self._catalog[text]
            else:
                self.missing.add(text)
        return out.format(**params) if params else out

    def number(self, value: float, digits: int = 0, signed: bool = False) -> str:
        """``value`` with ``digits`` decimals; a decimal comma where the language uses one."""
        return self.decimal(f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}")

    def percent(self, share: float, digits: int = 0) -> str:
        """A share in [0, 1] as a percentage (``87%``; Spanish writes ``87 %``)."""
        return self.decimal(f"{share:.{digits}%}")

    def decimal(self, text: str) -> str:
        """A number written the English way (``0.43``, ``87%``, from a format string) written
        this language's way (``0,43`` and ``87 %`` in Spanish)."""
        if self.lang != "es":
            return text
        text = text.replace(".", ",")
        return text[:-1] + "\u00a0%" if text.endswith("%") else text

    def date_time(self, unix: float) -> str:
        """A moment as the language writes it: ``2026-12-07 15:07`` or ``07/12/2026 15:07``."""
        fmt = "%d/%m/%Y %H:%M" if self.lang == "es" else "%Y-%m-%d %H:%M"
        return time.strftime(fmt, time.localtime(unix))

    def date(self, unix: float) -> str:
        """The day of a moment as the language writes it: ``2026-12-07`` or ``07/12/2026``."""
        return time.strftime("%d/%m/%Y" if self.lang == "es" else "%Y-%m-%d", time.localtime(unix))


def translator(lang: str = "en") -> Translator:
    """A :class:`Translator` for ``lang`` (a one-line error for a language emotrace lacks)."""
    return Translator(lang)
