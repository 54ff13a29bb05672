"""Classic NAS inside a trial: dump the space, or apply one architecture to the model.

``get_and_apply_next_architecture(model)`` is the one call a trial script makes. It behaves
according to where the script runs:

* under ss_gen (``NASCTL_GEN_SEARCH_SPACE`` set): writes the space there and exits 0;
* in an experiment (a parameter file given by the training service): applies that architecture;
* standalone (plain ``python model.py``): applies the file named by ``NASCTL_ARCHITECTURE``, or
  the first candidate of every choice, and says which on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from trials import env, reporting
from trials.errors import ArchitectureError
from trials.nas.model import parse_model
from trials.nas.mutables import InputChoice, LayerChoice
from trials.searchspace import (
    InputDecision,
    LayerDecision,
    architecture_to_json,
    is_nas_decision,
    loads_strict,
)


def dump_search_space(model: nn.Module, path: str | Path | None = None) -> dict[str, Any]:
    """The model's search space in NNI's JSON form; also written to ``path`` (keys sorted) if given."""
    space = parse_model(model).space
    if path is not None:
        space.dump(path)
    return space.to_json()


def _load(arch: str | Path | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(arch, Mapping):
        return arch, "architecture"
    try:
        text = Path(arch).read_text()
    except OSError as exc:
        raise ArchitectureError(f"{arch}: cannot read architecture file ({exc.strerror})") from None
    return loads_strict(text, str(arch), ArchitectureError), str(arch)


def apply_fixed_architecture(model: nn.Module, arch: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Fix every choice of ``model`` to ``arch`` (a dict or a JSON file) and return it in full form.

    Keys must match the model's exactly; values take any form of
    :meth:`~trials.searchspace.SearchSpace.parse_architecture`, NNI's multi-hot export included. A single-candidate ``LayerChoice`` is replaced by the
    chosen module itself, so the model keeps no parameters of unused candidates (and a state
    dict reads ``conv1.weight``, not ``conv1.conv5x5.weight``). Raises :class:`ArchitectureError`.
    """
    loaded, source = _load(arch)
    parsed = parse_model(model)
    decisions = parsed.space.parse_architecture(loaded, source)
    for occurrence in parsed.occurrences:
        decision = decisions[occurrence.module.key]
        module = occurrence.module
        if isinstance(module, LayerChoice):
            assert isinstance(decision, LayerDecision)
            if module.return_mask or module.reduction == "none":
                module.set_chosen([decision.index])  # the caller expects the (out, mask) or list shape
            else:
                setattr(occurrence.parent, occurrence.attribute, module[decision.index])
        elif isinstance(module, InputChoice):
            assert isinstance(decision, InputDecision)
            module.set_chosen(decision.indices)
    return architecture_to_json(decisions)


def get_and_apply_next_architecture(model: nn.Module) -> dict[str, Any]:
    """Apply this trial's architecture to ``model`` (see the module docstring); returns it."""
    target = os.environ.get(env.GEN_SEARCH_SPACE)
    if target:
        dump_search_space(model, target)
        print(f"[nasctl] search space written to {target}", file=sys.stderr, flush=True)
        sys.exit(0)
    if os.environ.get(env.PARAMETER_FILE):
        parameters = reporting.get_next_parameter()
        return apply_fixed_architecture(model, _nas_part(model, parameters))
    arch_file = os.environ.get(env.ARCHITECTURE)
    if arch_file:
        print(f"[nasctl] standalone: applying the architecture in {arch_file}", file=sys.stderr, flush=True)
        return apply_fixed_architecture(model, arch_file)
    space = parse_model(model).space
    print(
        "[nasctl] standalone: no experiment, so the first candidate of every choice is used "
        f"(set {env.ARCHITECTURE}=file.json to pick another)",
        file=sys.stderr,
        flush=True,
    )
    return apply_fixed_architecture(model, architecture_to_json(space.default_architecture()))


def _nas_part(model: nn.Module, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``parameters`` that belong to the model; hyper-parameters are left out.

    A full-form NAS entry for a key the model lacks is an error (the trial and the search space
    disagree); plain values for unknown keys are hyper-parameters for ``get_next_parameter``.
    """
    keys = set(parse_model(model).space.keys())
    stray = [k for k, v in parameters.items() if k not in keys and is_nas_decision(v)]
    if stray:
        raise ArchitectureError(
            f"parameters: key {stray[0]!r} is a NAS decision but the model has no such choice; "
            f"the model's keys are {', '.join(sorted(keys))}"
        )
    return {k: v for k, v in parameters.items() if k in keys}
