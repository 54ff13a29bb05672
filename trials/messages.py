"""The pieces of the one-line messages every room shows a person.

An error is one line that names the field, what was wrong and what is allowed
(docs/architecture.md, "Errors"); the CLI prints it after ``error:``, REST sends it as
``{"detail": ...}``, the dashboard shows it. These helpers are shared so that every room shortens and suggests the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def one_line(what: BaseException | str) -> str:
    """``what`` on one line: every run of whitespace, line breaks included, becomes one space.

    An exception reads ``Type: text`` (just ``Type`` when it has no text), since its type is often
    the only clue; a SyntaxError adds its file and line, which its text leaves out.
    """
    if isinstance(what, str):
        return _squeeze(what)
    if isinstance(what, SyntaxError):
        where = f" ({Path(what.filename).name}, line {what.lineno})" if what.filename else ""
        return f"SyntaxError: {_squeeze(str(what.msg))}{where}"
    text = _squeeze(str(what))
    return f"{type(what).__name__}: {text}" if text else type(what).__name__


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _squeeze(text: str) -> str:
    return " ".join(text.split())
