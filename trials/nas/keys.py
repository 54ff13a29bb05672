"""Keys of mutables at construction time, for every framework (no torch, no TensorFlow here).

A key given by the user is kept. A key left out gets an NNI-style name (``LayerChoice1``,
``InputChoice2``, ...) from a counter of the outermost model object whose ``__init__`` is running
(choices of both classes share it; numbers an explicit key already took are skipped), so building
the model twice in one process gives the same keys. A mutable built outside any model's
``__init__`` gets a provisional key (``LayerChoice@7``). The parse gives the final keys
(:mod:`trials.nas.walk`); :mod:`trials.nas.mutables` explains when they agree.

The framework says what a model object is (``owner_types``: ``nn.Module``, a Keras ``Layer``).
"""

from __future__ import annotations

import itertools
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

from trials.errors import MutableError

_provisional = itertools.count(1)
_tokens = itertools.count(1)


@dataclass
class _Numbering:
    """The auto-key counter of one model under construction, and the explicit keys built so far."""

    token: int = field(default_factory=lambda: next(_tokens))
    counter: int = 0
    explicit: set[str] = field(default_factory=set)


_numberings: weakref.WeakKeyDictionary[Any, _Numbering] = weakref.WeakKeyDictionary()


def _building_root(mutable: object, owner_types: tuple[type, ...]) -> Any | None:
    """The outermost model object (other than ``mutable``) whose ``__init__`` is on the call stack."""
    root = None
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "__init__":
            owner = frame.f_locals.get("self")
            if isinstance(owner, owner_types) and owner is not mutable:
                root = owner
        frame = frame.f_back
    del frame
    return root


def built_during_init_of(mutable: Any, model: Any) -> bool:
    """True when ``mutable`` was built while ``model``'s ``__init__`` ran (it took its key there)."""
    numbering = _numberings.get(model)
    return numbering is not None and numbering.token == mutable._numbering


def init_key(mutable: Any, key: Any, owner_types: tuple[type, ...]) -> None:
    """Give a new mutable its construction-time key and the bookkeeping the parse reads.

    Sets ``_key``, ``auto_key``, ``provisional_key``, ``_key_read``, ``_built_in`` (the class of
    the model being built, None at top level) and ``_numbering`` (which counter numbered it), in
    ``__dict__`` so no framework's attribute tracking sees them.
    """
    state = mutable.__dict__
    name = type(mutable).__name__
    state["_key_read"] = False
    root = _building_root(mutable, owner_types)
    numbering = None if root is None else _numberings.setdefault(root, _Numbering())
    state["_built_in"] = None if root is None else type(root).__name__
    state["_numbering"] = None if numbering is None else numbering.token
    if key is None:
        state["auto_key"] = True
        if numbering is None:
            state["provisional_key"] = f"{name}@{next(_provisional)}"
        else:
            numbering.counter += 1
            while f"{name}{numbering.counter}" in numbering.explicit:
                numbering.counter += 1
            state["provisional_key"] = f"{name}{numbering.counter}"
        state["_key"] = state["provisional_key"]
        return
    if not isinstance(key, str):
        warnings.warn(f"{name} key {key!r} is not a string; using {str(key)!r}", stacklevel=4)
        key = str(key)
    if not key:
        raise MutableError(f"{name}: key must be a non-empty string")
    state["auto_key"] = False
    state["provisional_key"] = key
    state["_key"] = key
    if numbering is not None:
        numbering.explicit.add(key)


class Keyed:
    """The ``key`` property of every framework's mutables (mixed in before the framework's base)."""

    _key: str

    @property
    def key(self) -> str:
        """The key in the search space (see :mod:`trials.nas.mutables` for when an auto key is final).

        Reading it is noted, so a parse that renames the key can warn; our own code reads ``_key``.
        """
        self.__dict__["_key_read"] = True
        return self._key
