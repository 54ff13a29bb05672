"""``LayerChoice``, ``InputChoice`` and ``MutableScope`` as Keras layers.

Same arguments, keys, rules and errors as the PyTorch ones (:mod:`trials.nas.mutables`; the
shared parts live in :mod:`trials.nas.keys` and :mod:`trials.nas.declarations`), so a Keras model
has the same search-space and architecture JSON. A choice holds its decision as a mask (a tuple
of bools, or floats for a weighted mix) and runs only the chosen candidates: a candidate that is
never called is never built, so after ``apply_fixed_architecture`` (before the first call) the
model holds only the chosen weights. ``reduction="concat"`` joins along the last axis (Keras is
channels-last; PyTorch's joins along axis 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from trials.errors import MutableError
from trials.nas import declarations as rules
from trials.nas.declarations import INPUT, LAYER, NO_KEY, SCOPE
from trials.nas.keys import Keyed, init_key
from trials.nas.tensorflow._keras import keras

__all__ = ["NO_KEY", "InputChoice", "LayerChoice", "Mutable", "MutableScope"]


class Mutable(Keyed, keras.layers.Layer):
    """Base of every Keras layer that carries a key in a search space."""

    kind: ClassVar[str | None] = None

    def __init__(self, key: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        init_key(self, key, (keras.layers.Layer,))


class MutableScope(Mutable):
    """Groups the choices of one part of a model (a cell); its key may be named in ``choose_from``."""

    kind = SCOPE

    def __init__(self, key: str, **kwargs: Any) -> None:
        rules.check_scope_key(key)
        super().__init__(key, **kwargs)


class _Choice(Mutable):
    """A decision over ``len(self)`` candidates, held as a mask."""

    def __init__(self, key: Any, reduction: str, return_mask: bool, **kwargs: Any) -> None:
        super().__init__(key, **kwargs)
        rules.check_reduction(f"{type(self).__name__} {self._key!r}", reduction)
        self.reduction = reduction
        self.return_mask = return_mask
        self.__dict__["_mask"] = None  # plain Python: Keras does not track the decision
        self.__dict__["_active"] = ()

    def __len__(self) -> int:
        raise NotImplementedError

    def build(self, input_shape: Any) -> None:
        """Nothing of its own to build: each candidate builds when it first runs."""

    @property
    def mask(self) -> tuple[bool, ...] | tuple[float, ...] | None:
        return self._mask

    @property
    def active(self) -> list[int]:
        return list(self._active)

    def set_mask(self, mask: Sequence[bool] | Sequence[float]) -> None:
        """Apply a decision: bools (chosen or not) or floats (weights); zero entries are not run."""
        values = tuple(mask.tolist() if hasattr(mask, "tolist") else mask)
        if len(values) != len(self):
            raise rules.mask_size_error(f"{type(self).__name__} {self._key!r}", len(self), (len(values),))
        self.__dict__["_mask"] = values
        self.__dict__["_active"] = tuple(i for i, on in enumerate(values) if on)

    def set_chosen(self, indices: Sequence[int]) -> None:
        chosen = {int(i) for i in indices}
        self.set_mask([i in chosen for i in range(len(self))])

    def _require_mask(self) -> tuple[Any, ...]:
        if self._mask is None:
            raise rules.no_architecture_error(f"{type(self).__name__} {self._key!r}")
        return self._mask

    def _weighted(self, index: int, output: Any) -> Any:
        weight = self._mask[index]
        return output if isinstance(weight, bool) else output * weight

    def _finish(self, outputs: list[Any]) -> Any:
        out = _reduce(outputs, self.reduction)
        return (out, list(self._mask)) if self.return_mask else out


def _reduce(outputs: list[Any], reduction: str) -> Any:
    if reduction == "none":
        return outputs
    if not outputs:
        return None
    if len(outputs) == 1:
        return outputs[0]
    if reduction == "concat":
        return keras.ops.concatenate(outputs, axis=-1)
    total = outputs[0]
    for out in outputs[1:]:
        total = total + out
    return total / len(outputs) if reduction == "mean" else total


class LayerChoice(_Choice):
    """Choose one of several candidate Keras layers.

    ``op_candidates`` is a list (candidates named "0", "1", ...) or an (ordered) dict of
    name -> layer.
    """

    kind = LAYER

    def __init__(
        self,
        op_candidates: Sequence[keras.layers.Layer] | Mapping[str, keras.layers.Layer],
        reduction: str = "sum",
        return_mask: bool = False,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(key, reduction, return_mask, **kwargs)
        where = f"LayerChoice {self._key!r}"
        if isinstance(op_candidates, Mapping):
            items = list(op_candidates.items())
        elif isinstance(op_candidates, (list, tuple)):
            items = [(str(i), layer) for i, layer in enumerate(op_candidates)]
        else:
            raise TypeError(
                f"{where}: op_candidates must be a list or a dict of Keras layers, got {type(op_candidates).__name__}"
            )
        if not items:
            raise MutableError(f"{where}: needs at least one candidate")
        names: list[str] = []
        for name, layer in items:
            rules.check_candidate_name(where, name, ())
            if not isinstance(layer, keras.layers.Layer):
                raise TypeError(
                    f"{where}: candidate {name!r} must be a Keras layer, got {type(layer).__name__}"
                )
            rules.check_candidate_name(where, name, names)
            for inner in layer._flatten_layers(include_self=True, recursive=True):
                if isinstance(inner, _Choice):
                    inner_path = "" if inner is layer else inner.name
                    raise rules.nested_choice_error(where, name, type(inner).__name__, inner._key, inner_path)
            names.append(name)
        self.__dict__["names"] = names
        self.candidates = [layer for _, layer in items]  # tracked by Keras: their weights are ours

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int | str) -> keras.layers.Layer:
        if isinstance(index, str):
            return self.candidates[self.names.index(index)]
        return self.candidates[index]

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        self._require_mask()
        return self._finish(
            [self._weighted(i, self.candidates[i](inputs, *args, **kwargs)) for i in self._active]
        )


class InputChoice(_Choice):
    """Choose ``n_chosen`` of ``n_candidates`` inputs (any number when ``n_chosen`` is None).

    ``choose_from`` names the keys of mutables or scopes registered earlier; ``""``
    (``InputChoice.NO_KEY``) marks an input with no key. Called with a list in that order, or
    a dict keyed by ``choose_from``.
    """

    NO_KEY: ClassVar[str] = NO_KEY
    kind = INPUT

    def __init__(
        self,
        n_candidates: int | None = None,
        choose_from: Sequence[str] | None = None,
        n_chosen: int | None = None,
        reduction: str = "sum",
        return_mask: bool = False,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(key, reduction, return_mask, **kwargs)
        n_candidates, choose_from = rules.input_choice_args(
            f"InputChoice {self._key!r}", n_candidates, choose_from, n_chosen
        )
        self.__dict__.update(n_candidates=n_candidates, n_chosen=n_chosen, choose_from=choose_from)

    def __len__(self) -> int:
        return self.n_candidates

    @property
    def candidate_names(self) -> list[str]:
        return rules.candidate_names(self.choose_from)

    def call(self, optional_inputs: Any) -> Any:
        self._require_mask()
        inputs = rules.inputs_in_order(f"InputChoice {self._key!r}", self.choose_from, optional_inputs)
        return self._finish([self._weighted(i, inputs[i]) for i in self._active])
