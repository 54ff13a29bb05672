"""Exceptions the SDK raises, and the "did you mean" hint its messages share with the manager."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SearchSpaceError(ValueError):
    """A search space (a model's choices or a JSON file) is malformed; the message names the key."""


class ArchitectureError(ValueError):
    """An architecture does not fit its search space; the message names the key and what is allowed."""


class MutableError(ValueError):
    """A model's LayerChoice/InputChoice declarations are inconsistent (nested, clashing keys, ...)."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
