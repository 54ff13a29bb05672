"""The model API: ``LayerChoice``, ``InputChoice`` and ``MutableScope``.

A mutable is an ordinary ``nn.Module`` that holds an open decision. It carries its decision
itself, as a mask over its candidates (bool for a sampled architecture, float for weighted
mixtures such as DARTS), so classic NAS and one-shot trainers drive the same modules. Calling
a choice before any decision was applied raises an error that says how to apply one.

Keys. A key given by the user is kept. A key left out gets an NNI-style name
(``LayerChoice1``, ``InputChoice2``, ...) when the mutable is built, so ``choice.key`` may be
read in ``__init__`` (to build a FLOPs table, or ``choose_from``). The number comes from a
counter of the outermost module whose ``__init__`` is running (the model being built; choices
of both classes share it, and numbers an explicit key already took are skipped), so building
the model twice in one process gives the same keys (NNI's process-wide counter does not). A
mutable built outside any module's ``__init__`` gets a provisional key (``LayerChoice@7``).

When a key is final: :func:`trials.nas.model.parse_model` numbers auto keys in module-registration
order and keeps the key given at construction where it agrees. So a key read in ``__init__`` is
final when the model builds its choices in the order it registers them, registers every choice
it builds and no explicit key taken later collides; otherwise the parse renames it (warning if the
key had been read) and ``choose_from`` entries naming the old key follow the new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from trials.errors import MutableError
from trials.nas import declarations as rules
from trials.nas.declarations import INPUT, LAYER, NO_KEY, REDUCTIONS, SCOPE
from trials.nas.keys import Keyed, built_during_init_of, init_key

__all__ = [
    "NO_KEY",
    "REDUCTIONS",
    "InputChoice",
    "LayerChoice",
    "Mutable",
    "MutableScope",
    "built_during_init_of",
]


class Mutable(Keyed, nn.Module):
    """Base of everything that carries a key in a search space."""

    kind: ClassVar[str | None] = None

    def __init__(self, key: Any = None) -> None:
        super().__init__()
        init_key(self, key, (nn.Module,))

    def extra_repr(self) -> str:
        return f"key={self._key!r}"


class MutableScope(Mutable):
    """Groups the choices of one part of a model (a cell); its key may be named in ``choose_from``.

    Subclass it like any module. Scopes never appear in the search space themselves.
    """

    kind = SCOPE

    def __init__(self, key: str) -> None:
        rules.check_scope_key(key)
        super().__init__(key)


def _reduce(outputs: list[Any], reduction: str) -> Any:
    if reduction == "none":
        return outputs
    if not outputs:
        return None
    if len(outputs) == 1:
        return outputs[0]
    if reduction == "concat":
        return torch.cat(outputs, dim=1)
    total = outputs[0]
    for out in outputs[1:]:
        total = total + out
    return total / len(outputs) if reduction == "mean" else total


def _same_tensors(outputs: Sequence[Any]) -> bool:
    """Whether ``outputs`` are tensors that ``torch.stack`` takes as they are."""
    first = outputs[0]
    if not isinstance(first, torch.Tensor):
        return False
    return all(
        isinstance(o, torch.Tensor)
        and o.shape == first.shape
        and o.dtype == first.dtype
        and o.device == first.device
        for o in outputs
    )


class _Choice(Mutable):
    """A decision over ``n`` candidates, held as a mask (see the module docstring)."""

    def __init__(self, key: Any, reduction: str, return_mask: bool) -> None:
        super().__init__(key)
        rules.check_reduction(f"{type(self).__name__} {self._key!r}", reduction)
        self.reduction = reduction
        self.return_mask = return_mask
        self._mask: torch.Tensor | None = None
        self._active: list[int] = []

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def mask(self) -> torch.Tensor | None:
        """The current decision: bool (chosen or not) or float (weight) per candidate."""
        return self._mask

    @property
    def active(self) -> list[int]:
        """The candidates the current decision runs; a cell may skip computing the others' inputs."""
        return list(self._active)

    def set_mask(
        self,
        mask: torch.Tensor | Sequence[bool] | Sequence[float],
        active: Sequence[int] | None = None,
    ) -> None:
        """Apply a decision. Candidates with a zero (or False) entry are not run at all.

        ``active`` lists the candidates to run when the caller already knows them: one-shot
        trainers pass it for a mask that lives on a GPU, which saves a device sync per choice.
        """
        if not isinstance(mask, torch.Tensor):
            mask = torch.tensor(list(mask))
        if mask.dim() != 1 or mask.numel() != len(self):
            raise rules.mask_size_error(f"{type(self).__name__} {self._key!r}", len(self), tuple(mask.shape))
        self._mask = mask
        if active is None:
            self._active = [i for i, on in enumerate(mask.detach().cpu().tolist()) if on]
        else:
            self._active = sorted(int(i) for i in active)

    def set_chosen(self, indices: Sequence[int]) -> None:
        """Apply a sampled decision given as candidate indices."""
        mask = torch.zeros(len(self), dtype=torch.bool)
        mask[list(indices)] = True
        self.set_mask(mask)

    def _require_mask(self) -> torch.Tensor:
        if self._mask is None:
            raise rules.no_architecture_error(f"{type(self).__name__} {self._key!r}")
        return self._mask

    def _finish(self, outputs: list[Any]) -> Any:
        """Reduce the active candidates' outputs (in ``active`` order), weighted by a float mask.

        Weights over tensors of one shape are applied at once (stack, one broadcast multiply, a
        sum over the candidates) rather than a multiply per candidate and a chain of adds, so a
        mixture costs three operator calls forward whatever its number of candidates. Not a
        matrix product: its columns may round differently, and each candidate's weight gradient
        here is the same reduction as before, so equal candidates still get equal gradients.
        """
        mask = self._mask
        assert mask is not None
        if mask.dtype == torch.bool:
            out = _reduce(outputs, self.reduction)
        elif self.reduction in ("sum", "mean") and len(outputs) > 1 and _same_tensors(outputs):
            weights = mask if len(outputs) == mask.numel() else mask[self._active]
            stacked = torch.stack(outputs)
            out = (stacked * weights.to(stacked.dtype).view(-1, *[1] * (stacked.dim() - 1))).sum(0)
            out = out / len(outputs) if self.reduction == "mean" else out
        else:
            out = _reduce([o * mask[i] for i, o in zip(self._active, outputs, strict=True)], self.reduction)
        return (out, mask) if self.return_mask else out


class LayerChoice(_Choice):
    """Choose one of several candidate modules (or, for one-shot trainers, a weighted mix).

    ``op_candidates`` is a list (candidates named "0", "1", ...) or an (ordered) dict of
    name -> module. Candidates are registered under their names, so a state dict reads
    ``conv1.conv5x5.weight``.
    """

    kind = LAYER

    def __init__(
        self,
        op_candidates: Sequence[nn.Module] | Mapping[str, nn.Module],
        reduction: str = "sum",
        return_mask: bool = False,
        key: str | None = None,
    ) -> None:
        super().__init__(key, reduction, return_mask)
        where = f"LayerChoice {self._key!r}"
        if isinstance(op_candidates, Mapping):
            items = list(op_candidates.items())
        elif isinstance(op_candidates, (list, tuple, nn.ModuleList)):
            items = [(str(i), module) for i, module in enumerate(op_candidates)]
        else:
            raise TypeError(
                f"{where}: op_candidates must be a list or a dict of modules, got {type(op_candidates).__name__}"
            )
        if not items:
            raise MutableError(f"{where}: needs at least one candidate")
        self.names: list[str] = []
        for name, module in items:
            self._add_candidate(where, name, module)

    def _add_candidate(self, where: str, name: Any, module: Any) -> None:
        rules.check_candidate_name(where, name, ())
        if not isinstance(module, nn.Module):
            raise TypeError(f"{where}: candidate {name!r} must be an nn.Module, got {type(module).__name__}")
        rules.check_candidate_name(where, name, self.names)
        if hasattr(self, name):
            raise MutableError(f"{where}: candidate name {name!r} is reserved (an attribute of LayerChoice)")
        for inner_name, inner in module.named_modules():
            if isinstance(inner, _Choice):
                raise rules.nested_choice_error(where, name, type(inner).__name__, inner._key, inner_name)
        self.add_module(name, module)
        self.names.append(name)

    @property
    def candidates(self) -> list[nn.Module]:
        return [self._modules[name] for name in self.names]  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.candidates)

    def __getitem__(self, index: int | str) -> nn.Module:
        if isinstance(index, str):
            return self._modules[index]  # type: ignore[return-value]
        return self.candidates[index]

    def prune(self, keep: Sequence[int]) -> None:
        """Remove every candidate but those at ``keep`` (their order stays), so they cost nothing.

        The search space of the model shrinks with it; the decision is cleared (the mask's
        length changed), so apply a new one before the next forward pass.
        """
        where = f"LayerChoice {self._key!r}"
        kept = sorted({int(i) for i in keep})
        if not kept:
            raise MutableError(f"{where}: prune needs at least one candidate to keep")
        if kept[0] < 0 or kept[-1] >= len(self.names):
            raise MutableError(
                f"{where}: prune indices must be in 0..{len(self.names) - 1}, got {list(keep)}"
            )
        for index, name in enumerate(list(self.names)):
            if index not in kept:
                del self._modules[name]
        self.names = [self.names[i] for i in kept]
        self._mask = None
        self._active = []

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._require_mask()
        candidates = self.candidates
        return self._finish([candidates[i](*args, **kwargs) for i in self._active])


class InputChoice(_Choice):
    """Choose ``n_chosen`` of ``n_candidates`` inputs (any number when ``n_chosen`` is None).

    ``choose_from`` names the keys (of mutables or scopes registered earlier) whose outputs are
    the candidates; ``""`` (``InputChoice.NO_KEY``, as NNI spells it) marks an input with no
    key. The forward pass takes a list in that order, or a dict keyed by ``choose_from``.
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
    ) -> None:
        super().__init__(key, reduction, return_mask)
        where = f"InputChoice {self._key!r}"
        n_candidates, choose_from = rules.input_choice_args(where, n_candidates, choose_from, n_chosen)
        self.n_candidates = n_candidates
        self.n_chosen = n_chosen
        self.choose_from = choose_from

    def __len__(self) -> int:
        return self.n_candidates

    @property
    def candidate_names(self) -> list[str]:
        """Names in the search space: the ``choose_from`` keys, ``in<i>`` for inputs with no key."""
        return rules.candidate_names(self.choose_from)

    def forward(self, optional_inputs: Sequence[Any] | Mapping[str, Any]) -> Any:
        self._require_mask()
        optional_inputs = rules.inputs_in_order(
            f"InputChoice {self._key!r}", self.choose_from, optional_inputs
        )
        return self._finish([optional_inputs[i] for i in self._active])


def candidates_dict(*pairs: tuple[str, nn.Module]) -> OrderedDict[str, nn.Module]:
    """Convenience: ``LayerChoice(candidates_dict(("conv3x3", a), ("conv5x5", b)))``."""
    return OrderedDict(pairs)
