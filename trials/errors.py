"""Exceptions the SDK raises (the "did you mean" hint of their messages is in :mod:`trials.messages`)."""

from __future__ import annotations


class SearchSpaceError(ValueError):
    """A search space (a model's choices or a JSON file) is malformed; the message names the key."""


class ArchitectureError(ValueError):
    """An architecture does not fit its search space; the message names the key and what is allowed."""


class MutableError(ValueError):
    """A model's LayerChoice/InputChoice declarations are inconsistent (nested, clashing keys, ...)."""
