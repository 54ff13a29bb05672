"""The Tuner contract, run over every built-in tuner as the daemon builds it.

Each test states one promise of :class:`manager.tuners.base.Tuner` (or one every built-in makes
on top of it) that the experiment loop and recovery rely on. A tuner is built by the registry
from its name and ``classArgs``, so what is tested is the ``CheckedTuner`` the daemon holds.
A :class:`Builtin` row says what a tuner takes: a new built-in joins by adding its row.
Each tuner's own algorithm (evolution's aging, PPO's learning, the grid's order, random's
uniformity) is tested in its own ``tests/test_tuners_*.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import NoMoreTrials, Tuner, TunerError
from manager.tuners.registry import create_tuner
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace, architecture_to_json

#: Checkpoints saved by nasctl before the checkpoint envelope was written once, with what followed.
EARLIER_CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "tuner_checkpoints_v1.json"

#: One search-space entry per choice type a space may hold.
CHOICE_TYPES: dict[str, dict[str, Any]] = {
    "layer_choice": layer("a", "b", "c"),
    "input_choice": inputs(4, 2),
    "input_choice n_chosen null": inputs(3, None),
    "input_choice n_chosen 0": inputs(2, 0),
    "input_choice all chosen": inputs(3, 3),
    "choice": {"_type": "choice", "_value": [16, 32, 64]},
    "randint": {"_type": "randint", "_value": [2, 6]},
    "uniform": {"_type": "uniform", "_value": [0.0, 0.5]},
    "quniform": {"_type": "quniform", "_value": [8, 64, 8]},
    "loguniform": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "qloguniform": {"_type": "qloguniform", "_value": [1, 1000, 10]},
    "normal": {"_type": "normal", "_value": [0.0, 1.0]},
    "qnormal": {"_type": "qnormal", "_value": [0.0, 3.0, 0.5]},
    "lognormal": {"_type": "lognormal", "_value": [1.0, 0.5]},
    "qlognormal": {"_type": "qlognormal", "_value": [3.0, 1.0, 2.0]},
}
CONTINUOUS = frozenset(
    ("uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal", "lognormal", "qlognormal")
)

#: Every finite type at once: 3 * C(3,1) * 2**2 * 2 * 2 = 144 architectures.
FINITE = space(
    {
        "conv": layer("a", "b", "c"),
        "skip": inputs(3, 1),
        "any": inputs(2, None),
        "bs": {"_type": "choice", "_value": [16, 32]},
        "depth": {"_type": "randint", "_value": [1, 3]},
    }
)

#: 2 * 2**2 * C(3,2) * 2 * 2 = 96 architectures, written out in the short form by :func:`small_architectures`.
SMALL = space(
    {
        "conv": layer("a", "b"),
        "any": inputs(2, None),
        "pick": inputs(3, 2),
        "act": {"_type": "choice", "_value": ["relu", "tanh"]},
        "depth": {"_type": "randint", "_value": [1, 3]},
    }
)


@dataclass(frozen=True)
class Builtin:
    """A built-in tuner as the daemon builds it, and what it promises beyond the base contract."""

    name: str
    #: Fast settings (PPO updates every two trials); ``seed`` is added for a seeded tuner.
    class_args: dict[str, Any] = field(default_factory=dict)
    #: Takes a ``seed`` class argument (GridSearch is deterministic and takes none).
    seeded: bool = True
    #: Choice types it refuses with SearchSpaceError naming the key; it searches all others.
    refuses: frozenset[str] = frozenset()

    def build(self, seed: int | None = 0) -> Tuner:
        args = dict(self.class_args)
        if self.seeded:
            args["seed"] = seed
        return create_tuner(TunerConfig(name=self.name, class_args=args))

    def every_type(self) -> SearchSpace:
        """A space with one key of every choice type this tuner takes."""
        kinds = [kind for kind in CHOICE_TYPES if kind not in self.refuses]
        return space({f"k{i}": CHOICE_TYPES[kind] for i, kind in enumerate(kinds)})

    def on(self, search_space: SearchSpace, seed: int | None = 0) -> Tuner:
        tuner = self.build(seed)
        tuner.update_search_space(search_space)
        return tuner


#: Every built-in raises NoMoreTrials once a finite space is exhausted (Random and GridSearch by
#: counting, RegularizedEvolution and Predictor through their random fallback, PPO by masking seen branches);
#: on a space with a continuous type Random and RegularizedEvolution never run out.
BUILTINS = [
    Builtin("Random"),
    Builtin("RegularizedEvolution", {"population_size": 4, "sample_size": 2}),
    Builtin(
        "PPO",
        {"optimize_mode": "maximize", "trials_per_update": 2, "epochs_per_update": 1, "minibatch_size": 1},
        refuses=CONTINUOUS,
    ),
    Builtin("GridSearch", seeded=False, refuses=CONTINUOUS - {"quniform", "qloguniform"}),
    Builtin("Optuna"),
    Builtin("Predictor", {"initial_trials": 4}, refuses=CONTINUOUS),
]


@pytest.fixture(params=BUILTINS, ids=[b.name for b in BUILTINS])
def builtin(request: pytest.FixtureRequest) -> Iterator[Builtin]:
    yield request.param


def objective(arch: dict[str, Any]) -> float:
    """A deterministic score in [0, 1) that differs between architectures."""
    return zlib.crc32(json.dumps(arch, sort_keys=True).encode()) / 2**32


def drive(tuner: Tuner, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` trials one after another, each with its result and a successful end."""
    archs = []
    for parameter_id in range(start, start + count):
        arch = tuner.generate_parameters(parameter_id)
        archs.append(arch)
        tuner.receive_trial_result(parameter_id, arch, objective(arch))
        tuner.trial_end(parameter_id, True)
    return archs


def assert_valid(search_space: SearchSpace, archs: list[dict[str, Any]]) -> None:
    """Each architecture fits the space and is in the full ``{_value, _idx}`` form."""
    for arch in archs:
        assert architecture_to_json(search_space.parse_architecture(arch)) == arch


def freeze(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True)


def small_architectures() -> list[dict[str, Any]]:
    """Every architecture of :data:`SMALL`, in the short form (names)."""
    subsets: list[list[str]] = [[], ["in0"], ["in1"], ["in0", "in1"]]
    pairs = [["in0", "in1"], ["in0", "in2"], ["in1", "in2"]]
    return [
        {"conv": c, "any": a, "pick": p, "act": act, "depth": depth}
        for c in ("a", "b")
        for a in subsets
        for p in pairs
        for act in ("relu", "tanh")
        for depth in (1, 2)
    ]


def resume(builtin: Builtin, search_space: SearchSpace, old: Tuner) -> Tuner:
    """What a restarted daemon does: build, give the space, load the (JSON-stored) checkpoint.

    The new tuner gets another seed: the checkpoint carries the generator state.
    """
    state = json.loads(json.dumps(old.save_checkpoint()))
    fresh = builtin.on(search_space, seed=99)
    fresh.load_checkpoint(state)
    return fresh


# -- proposals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CHOICE_TYPES))
def test_proposes_valid_architectures_for_every_choice_type_it_takes(builtin: Builtin, kind: str) -> None:
    search_space = space({"conv": layer("a", "b"), "x": CHOICE_TYPES[kind]})
    tuner = builtin.build()
    if kind in builtin.refuses:
        with pytest.raises((SearchSpaceError, TunerError), match=rf"'x'.*{builtin.name}.*{kind}"):
            tuner.update_search_space(search_space)
        return
    tuner.update_search_space(search_space)
    size = search_space.size()
    archs = drive(tuner, 0, 16 if size is None else min(16, size))
    assert_valid(search_space, archs)
    if kind == "input_choice n_chosen null":
        assert len({tuple(a["x"]["_idx"]) for a in archs}) > 1


def test_the_same_seed_gives_the_same_proposals(builtin: Builtin) -> None:
    search_space = builtin.every_type()
    assert drive(builtin.on(search_space, seed=7), 0, 20) == drive(builtin.on(search_space, seed=7), 0, 20)


def test_another_seed_gives_other_proposals(builtin: Builtin) -> None:
    if not builtin.seeded:
        pytest.skip(f"{builtin.name} takes no seed")
    search_space = builtin.every_type()
    assert drive(builtin.on(search_space, seed=1), 0, 20) != drive(builtin.on(search_space, seed=2), 0, 20)


def test_no_architecture_twice_and_no_more_trials_once_the_space_is_exhausted(builtin: Builtin) -> None:
    tuner = builtin.on(SMALL)
    archs = drive(tuner, 0, 96)
    assert_valid(SMALL, archs)
    assert len({freeze(a) for a in archs}) == 96
    for parameter_id in (96, 97):  # and it keeps saying so
        with pytest.raises(NoMoreTrials):
            tuner.generate_parameters(parameter_id)


# -- checkpoints ----------------------------------------------------------------------------------


def test_a_checkpoint_round_trip_continues_the_same_sequence(builtin: Builtin) -> None:
    search_space = builtin.every_type()

    def scenario(restart: Callable[[Tuner], Tuner]) -> list[dict[str, Any]]:
        tuner = builtin.on(search_space)
        archs = drive(tuner, 0, 7)
        running = [tuner.generate_parameters(i) for i in (7, 8)]  # the daemon saves with every new trial
        tuner = restart(tuner)
        tuner.receive_trial_result(7, running[0], objective(running[0]))
        tuner.trial_end(7, True)
        tuner.trial_end(8, False)
        return [*archs, *running, *drive(tuner, 9, 12)]

    assert scenario(lambda old: resume(builtin, search_space, old)) == scenario(lambda same: same)


def test_a_checkpoint_saved_by_an_earlier_nasctl_loads_and_continues(builtin: Builtin) -> None:
    earlier = json.loads(EARLIER_CHECKPOINTS.read_text())[builtin.name]
    assert earlier["class_args"] == builtin.class_args  # the settings they were saved with
    checkpoint = dict(earlier["checkpoint"])
    now = builtin.on(FINITE, seed=5)
    drive(now, 0, 6)
    running = now.generate_parameters(6)
    saved = json.loads(json.dumps(now.save_checkpoint()))
    if "weights_sha256" in earlier:  # PPO's weights are stored by their hash; equal bytes load equally
        blob = saved["weights"]
        assert hashlib.sha256(blob.encode()).hexdigest() == earlier["weights_sha256"]
        checkpoint["weights"] = blob
    assert saved == checkpoint  # the format is unchanged
    assert running == earlier["running"]
    tuner = builtin.on(FINITE, seed=99)
    tuner.load_checkpoint(checkpoint)
    tuner.receive_trial_result(6, running, objective(running))
    tuner.trial_end(6, True)
    assert drive(tuner, 7, 5) == earlier["next"]


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        pytest.param(lambda fmt: ["nasctl.RandomTuner/1"], "not a JSON object", id="not-an-object"),
        pytest.param(lambda fmt: {"rng": []}, "no format", id="no-format"),
        pytest.param(lambda fmt: {"format": 1}, "format 1 ", id="format-not-a-string"),
        pytest.param(lambda fmt: {"format": "nasctl.OtherTuner/1"}, "saved by OtherTuner", id="kind"),
        pytest.param(lambda fmt: {"format": fmt.rpartition("/")[0] + "/2"}, "version 2", id="version"),
    ],
)
def test_a_checkpoint_of_another_format_is_refused_with_one_clear_error(
    builtin: Builtin, corrupt: Callable[[str], Any], problem: str
) -> None:
    tuner = builtin.on(FINITE)
    twin = builtin.on(FINITE)
    drive(tuner, 0, 3)
    drive(twin, 0, 3)
    expected = tuner.save_checkpoint()["format"]
    with pytest.raises(TunerError) as info:
        tuner.load_checkpoint(corrupt(expected))
    message = str(info.value)
    assert "\n" not in message and problem in message and f"{expected} expected" in message
    assert drive(tuner, 3, 6) == drive(twin, 3, 6)  # refused: nothing changed


def test_a_damaged_checkpoint_is_refused_and_changes_nothing(builtin: Builtin) -> None:
    source = builtin.on(FINITE, seed=3)
    drive(source, 0, 5)
    state = json.loads(json.dumps(source.save_checkpoint()))
    tuner, twin = builtin.on(FINITE), builtin.on(FINITE)
    drive(tuner, 0, 3)
    drive(twin, 0, 3)
    for key in [k for k in state if k != "format"]:
        damaged = {k: v for k, v in state.items() if k != key}
        with pytest.raises(TunerError) as info:
            tuner.load_checkpoint(damaged)
        assert "\n" not in str(info.value)
    assert drive(tuner, 3, 6) == drive(twin, 3, 6)


# -- results and imports --------------------------------------------------------------------------


def test_import_data_is_accepted_and_proposals_stay_valid(builtin: Builtin) -> None:
    tuner = builtin.on(FINITE)
    earlier = drive(builtin.on(FINITE, seed=4), 0, 6)
    records: list[Any] = [{"parameter": arch, "value": objective(arch)} for arch in earlier[:3]]
    records += [
        {"parameter": {"conv": "b", "skip": ["in2"], "any": [], "bs": 32, "depth": 2}, "value": 0.5},
        {"parameter": earlier[3], "value": math.nan},
        {"parameter": earlier[4]},
        {"parameter": {"conv": "no such candidate"}, "value": 1.0},
        {"value": 2.0},
        "junk",
    ]
    tuner.import_data(records)
    assert_valid(FINITE, drive(tuner, 0, 12))


def test_imported_architectures_are_not_proposed_again(builtin: Builtin) -> None:
    everything = small_architectures()
    tuner = builtin.on(SMALL)
    tuner.import_data([{"parameter": arch, "value": float(i)} for i, arch in enumerate(everything[:90])])
    rest = {freeze(architecture_to_json(SMALL.parse_architecture(a))) for a in everything[90:]}
    assert {freeze(a) for a in drive(tuner, 0, 6)} == rest
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(6)


def test_a_failed_trial_without_a_result_is_tolerated(builtin: Builtin) -> None:
    tuner = builtin.on(FINITE)
    for parameter_id in range(0, 12, 2):
        tuner.generate_parameters(parameter_id)
        tuner.trial_end(parameter_id, False)  # failed or cancelled: no result ever comes
        drive(tuner, parameter_id + 1, 1)
    tuner.trial_end(11, True)  # succeeded without a final result
    assert_valid(FINITE, drive(tuner, 12, 8))


def test_a_result_after_the_trial_end_is_tolerated(builtin: Builtin) -> None:
    tuner = builtin.on(FINITE)
    archs = [tuner.generate_parameters(i) for i in range(6)]
    for parameter_id, arch in enumerate(archs):
        tuner.trial_end(parameter_id, parameter_id % 2 == 0)
        tuner.receive_trial_result(parameter_id, arch, objective(arch))
    assert_valid(FINITE, drive(tuner, 6, 8))


def test_results_arrive_in_any_order(builtin: Builtin) -> None:
    tuner = builtin.on(FINITE)
    archs = [tuner.generate_parameters(i) for i in range(8)]
    for parameter_id in (5, 0, 7, 2, 1, 6, 3, 4):
        tuner.receive_trial_result(parameter_id, archs[parameter_id], objective(archs[parameter_id]))
        tuner.trial_end(parameter_id, True)
    assert_valid(FINITE, drive(tuner, 8, 8))


def test_results_and_ends_for_unknown_parameter_ids_are_tolerated(builtin: Builtin) -> None:
    tuner = builtin.on(FINITE)
    drive(tuner, 0, 3)
    stranger = drive(builtin.on(FINITE, seed=8), 0, 1)[0]
    tuner.receive_trial_result(1000, stranger, 0.5)
    tuner.trial_end(1000, True)
    tuner.trial_end(1001, False)
    assert_valid(FINITE, drive(tuner, 3, 10))
