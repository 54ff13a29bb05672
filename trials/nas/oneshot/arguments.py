"""The keyword arguments a one-shot trainer accepts, and one clear refusal of everything else.

A trainer's accepted names are the union of the ``__init__`` signatures along its class's MRO
(a subclass passes the rest on with ``**kwargs``), so a new trainer needs no code here. A wrong
name gets the nasctl spelling when it is NNI v1.9's (people port NNI code by changing the
imports), else a did-you-mean from the trainer's own names; every wrong name is listed at once.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

#: NNI v1.9's one-shot trainer arguments -> (nasctl's name or None, what to do instead).
NNI_ARGUMENTS: Mapping[str, tuple[str | None, str]] = {
    "dataset_train": ("train_data", "a DataLoader or any re-iterable of batches"),
    "dataset_valid": ("valid_data", "a DataLoader or any re-iterable of batches"),
    "train_loader": ("train_data", "a DataLoader or any re-iterable of batches"),
    "valid_loader": ("valid_data", "a DataLoader or any re-iterable of batches"),
    "log_frequency": ("log_every", "steps between log lines"),
    "arc_learning_rate": ("arch_lr", "the architecture weights' learning rate"),
    "mutator_lr": ("controller_lr", "the controller's learning rate"),
    "mutator_steps": ("controller_steps", "architectures sampled per controller phase"),
    "mutator_steps_aggregate": ("controller_aggregate", "samples per controller update"),
    "reward_function": ("reward", "a metric name of `metrics`"),
    "batch_size": (None, "build DataLoaders and pass train_data/valid_data"),
    "workers": (None, "build DataLoaders and pass train_data/valid_data"),
    "mutator": (None, "none, nasctl trainers build their own sampler"),
    "child_steps": (None, "none, one epoch is one pass over train_data"),
}

#: Where NNI's own signature (its names and positional order) is taken, per trainer algorithm.
NNI_COMPATIBLE = {
    "DARTS": "trials.nas.nni.darts.DartsTrainer",
    "ENAS": "trials.nas.nni.enas.EnasTrainer",
    "SPOS": "trials.nas.nni.spos.SPOSSupernetTrainer",
}
_ANY_NNI = "trials.nas.nni.<darts|enas|spos>.<Name> (NNI's DARTS, ENAS and SPOS)"


class TrainerArgumentError(TypeError):
    """A trainer was given arguments it does not take; the message names each and the right one."""


def accepted_arguments(cls: type) -> frozenset[str]:
    """Every name the ``__init__`` signatures along ``cls``'s MRO take (``self`` excluded)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    names.discard("self")
    return frozenset(names)


def positional_names(cls: type) -> list[str]:
    """The parameters of ``cls.__init__`` that may be given by position (``self`` excluded)."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def nni_trainer(cls: type) -> str:
    """The NNI-compatible trainer that takes NNI's arguments for ``cls``'s algorithm."""
    return NNI_COMPATIBLE.get(getattr(cls, "algorithm", ""), _ANY_NNI)


def check_arguments(cls: type, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise ``TrainerArgumentError`` for extra positional arguments and unknown keyword names
    (every problem in one message)."""
    name = cls.__name__
    problems = []
    positional = positional_names(cls)
    if len(args) > len(positional):
        problems.append(
            f"{len(args)} positional arguments, but only {', '.join(positional) or 'none'} may be given by "
            "position and every other argument is keyword-only (train_data=..., num_epochs=...)"
        )
    accepted = accepted_arguments(cls)
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        hints = ", ".join(f"{key} ({_hint(key, accepted, name)})" for key in unknown)
        problems.append(f"unknown arguments {hints}")
    if not problems:
        return
    message = f"{name}: {'; '.join(problems)}"
    if len(args) > len(positional) or any(key in NNI_ARGUMENTS for key in unknown):
        message += (
            f"; or use the NNI-compatible trainer {nni_trainer(cls)}, which takes NNI's arguments and order"
        )
    raise TrainerArgumentError(message)


def _hint(key: str, accepted: frozenset[str], trainer: str) -> str:
    if key in NNI_ARGUMENTS:
        ours, what = NNI_ARGUMENTS[key]
        if ours is None:
            return f"NNI's; nasctl: {what}"
        if ours in accepted:
            return f"nasctl: {ours}, {what}"
        return f"NNI's name of nasctl's {ours}, which {trainer} does not take"
    # a misspelt NNI name means its nasctl spelling (arc_learnin_rate: arch_lr)
    spellings = {nni: ours for nni, (ours, _) in NNI_ARGUMENTS.items() if ours in accepted}
    spellings.update({ours: ours for ours in accepted})
    close = difflib.get_close_matches(key, sorted(spellings), n=1)
    if close:
        return f"did you mean {spellings[close[0]]}?"
    return f"{trainer} takes {', '.join(sorted(accepted))}"
