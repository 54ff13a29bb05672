"""What every built-in tuner's checkpoint shares: its envelope, its space's identity, its generator.

A built-in's checkpoint is a JSON object whose ``format`` field names the tuner and the version
of its layout, ``"nasctl.<Kind>/<version>"``, followed by the tuner's own fields. The daemon
stores it as given and hands it back on resume; :meth:`CheckpointFormat.open` is the one place
that decides whether a stored object is this tuner's and says, in one line, what is wrong when
it is not (another tuner's, another version, not a checkpoint at all). Loading is all or
nothing: :meth:`CheckpointFormat.reading` turns a missing or malformed field into one
:class:`TunerError`, and a tuner assigns what it read only after everything was read.

Random generators travel as ``[version, [internal state...], gauss_next]``, the JSON of
``random.Random.getstate()``. PPO's torch generator needs no state of its own: it only
initialises the policy from the seed, and every draw after that comes from ``random.Random``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from manager.tuners.base import TunerError
from trials.searchspace import SearchSpace

PREFIX = "nasctl."

#: What reading a malformed field raises (a missing key, a wrong type, a bad number).
DAMAGE = (KeyError, TypeError, ValueError)


@dataclass(frozen=True)
class CheckpointFormat:
    """One tuner's checkpoint layout: ``kind`` names the tuner (and its messages), ``version`` the layout."""

    kind: str
    version: int

    @property
    def tag(self) -> str:
        """The ``format`` field, e.g. ``nasctl.RandomTuner/1``."""
        return f"{PREFIX}{self.kind}/{self.version}"

    def envelope(self, **fields: Any) -> dict[str, Any]:
        """A checkpoint: the ``format`` field first, then ``fields`` in their order."""
        return {"format": self.tag, **fields}

    def open(self, state: Any) -> Mapping[str, Any]:
        """``state`` if it is a checkpoint of this format; else one :class:`TunerError` naming the problem."""
        problem = self._problem(state)
        if problem is not None:
            raise TunerError(f"{self.kind}: cannot load the checkpoint: {problem} ({self.tag} expected)")
        return state

    def check_space(self, state: Mapping[str, Any], fingerprint: str | None) -> None:
        """Refuse a checkpoint made for another search space than the one given (``fingerprint``)."""
        if fingerprint is None or state.get("space") != fingerprint:
            raise TunerError(f"{self.kind}: the checkpoint was made for another search space")

    @contextlib.contextmanager
    def reading(self, *also: type[Exception]) -> Iterator[None]:
        """Reading a checkpoint's fields: a missing or malformed one (or ``also``) is a damaged checkpoint."""
        try:
            yield
        except (*DAMAGE, *also) as exc:
            raise TunerError(f"{self.kind}: damaged checkpoint ({exc})") from None

    def _problem(self, state: Any) -> str | None:
        if not isinstance(state, Mapping):
            return f"not a JSON object but {type(state).__name__}"
        found = state.get("format")
        if found is None:
            return "no format field"
        if found == self.tag:
            return None
        if not isinstance(found, str) or not found.startswith(PREFIX) or "/" not in found:
            return f"format {found!r} is not a nasctl tuner's"
        kind, _, version = found[len(PREFIX) :].partition("/")
        if kind != self.kind:
            return f"it was saved by {kind}"
        return f"it is version {version}; this nasctl reads version {self.version}"


def rng_to_json(rng: random.Random) -> list[Any]:
    """The generator's state as JSON: ``[version, [internal state...], gauss_next]``."""
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def rng_from_json(obj: Any) -> random.Random:
    """A new generator in the state :func:`rng_to_json` wrote; ValueError or TypeError if malformed."""
    version, internal, gauss_next = obj
    rng = random.Random()
    rng.setstate((version, tuple(internal), gauss_next))
    return rng


def space_fingerprint(space: SearchSpace) -> str:
    """Identifies a space *with its key order*, which a tuner's numbering of it depends on."""
    text = json.dumps(space.to_json(), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
