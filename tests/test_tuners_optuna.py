"""The Optuna tuner: how our space maps to Optuna's distributions, ask/tell, resume, its refusals.

What every built-in promises (valid proposals, no repeats, checkpoints, tolerance of odd result
orders) is the contract suite's (tests/contracts/test_tuner.py); here is what is Optuna's own.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from spaces import inputs, layer, space

from manager.config import TunerConfig
from manager.tuners.base import Tuner, TunerError
from manager.tuners.optuna_space import MAX_SUBSETS, axes_for, axis_for, neighbour
from manager.tuners.registry import check_tuner_config, create_tuner
from trials.errors import SearchSpaceError
from trials.objectives import Objectives
from trials.searchspace import SearchSpace

REPO = Path(__file__).resolve().parents[1]


def optuna_tuner(search_space: SearchSpace, seed: int = 0, **class_args: Any) -> Tuner:
    tuner = create_tuner(TunerConfig(name="Optuna", class_args={"seed": seed, **class_args}))
    tuner.update_search_space(search_space)
    return tuner


def one_axis(entry: dict[str, Any]) -> Any:
    return axis_for(space({"x": entry}).__iter__().__next__(), "Optuna")


def checkpoint_trials(tuner: Tuner) -> list[list[Any]]:
    """The study's trials as the checkpoint holds them: [state, params, values, attributes]."""
    state = tuner.save_checkpoint()
    assert state is not None
    return json.loads(json.dumps(state))["trials"]


# -- mapping ----------------------------------------------------------------------------------------


def test_a_layer_choice_is_a_categorical_over_indices() -> None:
    axis = one_axis(layer("a", "b", "c"))
    assert axis.distributions == {"x": CategoricalDistribution([0, 1, 2])}
    assert axis.decode({"x": 2}) == {"_value": "c", "_idx": 2}


def test_a_choice_of_plain_values_is_a_categorical_over_the_values() -> None:
    axis = one_axis({"_type": "choice", "_value": [16, "wide", None, 0.5]})
    assert axis.distributions == {"x": CategoricalDistribution([16, "wide", None, 0.5])}
    assert axis.decode({"x": "wide"}) == "wide"


def test_a_choice_optuna_cannot_store_is_a_categorical_over_indices() -> None:
    axis = one_axis({"_type": "choice", "_value": [1, True, [3, 4]]})  # 1 == True; a list
    assert axis.distributions == {"x": CategoricalDistribution([0, 1, 2])}
    assert axis.decode({"x": 2}) == [3, 4] and axis.encode([3, 4]) == {"x": 2}


def test_randint_is_an_int_distribution_without_its_exclusive_upper_bound() -> None:
    assert one_axis({"_type": "randint", "_value": [2, 6]}).distributions == {"x": IntDistribution(2, 5)}


@pytest.mark.parametrize(
    ("kind", "args", "log"),
    [("uniform", [0.0, 0.5], False), ("quniform", [8, 64, 8], False), ("loguniform", [1e-4, 0.1], True)],
)
def test_a_bounded_continuous_type_is_a_float_over_its_range(kind: str, args: list[float], log: bool) -> None:
    axis = one_axis({"_type": kind, "_value": args})
    assert axis.distributions == {"x": FloatDistribution(float(args[0]), float(args[1]), log=log)}


def test_a_q_type_is_rounded_to_a_multiple_of_q_within_its_range() -> None:
    axis = one_axis({"_type": "quniform", "_value": [8, 64, 8]})
    assert axis.decode({"x": 21.0}) == 24 and axis.decode({"x": 63.9}) == 64


def test_a_normal_type_is_its_quantile_so_the_prior_is_the_normal_law() -> None:
    axis = one_axis({"_type": "normal", "_value": [3.0, 2.0]})
    assert axis.distributions == {"x": FloatDistribution(0.0, 1.0)}
    assert axis.decode({"x": 0.5}) == pytest.approx(3.0)
    assert axis.decode({"x": 0.8413447}) == pytest.approx(5.0, abs=1e-5)  # one sigma up
    assert axis.decode({"x": 0.0}) < -10 and axis.decode({"x": 1.0}) > 16  # the ends stay finite


def test_a_lognormal_type_is_the_exponential_of_the_normal_quantile() -> None:
    axis = one_axis({"_type": "lognormal", "_value": [1.0, 0.5]})
    assert axis.decode({"x": 0.5}) == pytest.approx(2.718281828)


def test_an_input_choice_of_any_number_is_one_boolean_per_candidate() -> None:
    axis = one_axis(inputs(3, None))
    assert axis.distributions == {f"x/{i}": CategoricalDistribution([False, True]) for i in range(3)}
    assert axis.decode({"x/0": True, "x/1": False, "x/2": True}) == {"_value": ["in0", "in2"], "_idx": [0, 2]}
    assert axis.decode({"x/0": False, "x/1": False, "x/2": False}) == {"_value": [], "_idx": []}


def test_an_input_choice_of_k_is_one_categorical_over_its_subsets_when_they_are_few() -> None:
    axis = one_axis(inputs(4, 2))
    assert axis.distributions == {"x": CategoricalDistribution(["0,1", "0,2", "0,3", "1,2", "1,3", "2,3"])}
    assert axis.decode({"x": "1,3"}) == {"_value": ["in1", "in3"], "_idx": [1, 3]}


def test_an_input_choice_of_k_among_many_is_k_picks_among_the_candidates_left() -> None:
    axis = one_axis(inputs(12, 5))  # C(12, 5) = 792 subsets
    assert MAX_SUBSETS < 792
    assert axis.distributions == {
        f"x/pick{j}": CategoricalDistribution(list(range(12 - j))) for j in range(5)
    }
    picks = {"x/pick0": 0, "x/pick1": 0, "x/pick2": 9, "x/pick3": 0, "x/pick4": 7}  # 0, 1, 11, 2, 10
    assert axis.decode(picks)["_idx"] == [0, 1, 2, 10, 11]


@pytest.mark.parametrize("n_chosen", [0, 3])
def test_an_input_choice_of_none_or_all_candidates_takes_no_parameter(n_chosen: int) -> None:
    axis = one_axis(inputs(3, n_chosen))
    assert axis.distributions == {}
    assert axis.decode({})["_idx"] == list(range(n_chosen))


@pytest.mark.parametrize(
    "entry",
    [
        layer("a", "b", "c"),
        inputs(3, None),
        inputs(4, 2),
        inputs(12, 5),
        {"_type": "choice", "_value": [1, True, "s"]},
        {"_type": "randint", "_value": [2, 9]},
        {"_type": "qloguniform", "_value": [1, 1000, 10]},
        {"_type": "qnormal", "_value": [0.0, 3.0, 0.5]},
        {"_type": "lognormal", "_value": [1.0, 0.5]},
    ],
    ids=lambda entry: (
        entry["_type"] + (str(entry["_value"].get("n_chosen")) if entry["_type"] == "input_choice" else "")
    ),
)
def test_every_proposal_maps_back_to_the_parameters_that_give_it(entry: dict[str, Any]) -> None:
    search_space = space({"x": entry})
    tuner = optuna_tuner(search_space)
    (axis,) = axes_for(list(search_space), "Optuna")
    for parameter_id in range(min(20, search_space.size() or 20)):
        value = tuner.generate_parameters(parameter_id)["x"]
        back = axis.decode(axis.encode(value))
        assert back == (pytest.approx(value) if isinstance(value, float) else value)


def test_picks_never_choose_an_input_twice() -> None:
    search_space = space({"x": inputs(12, 5)})
    tuner = optuna_tuner(search_space)
    for parameter_id in range(40):
        chosen = tuner.generate_parameters(parameter_id)["x"]["_idx"]
        assert len(set(chosen)) == 5
        tuner.receive_trial_result(parameter_id, {}, float(sum(chosen)))


def test_a_neighbour_moves_exactly_the_named_parameters_within_their_distributions() -> None:
    distributions = {
        "c": CategoricalDistribution(["a", "b", "c"]),
        "i": IntDistribution(0, 100),
        "f": FloatDistribution(1e-4, 1.0, log=True),
        "kept": CategoricalDistribution([0, 1]),
    }
    params = {"c": "a", "i": 50, "f": 0.01, "kept": 1}
    rng = random.Random(0)
    for _ in range(50):
        moved = neighbour(params, distributions, ["c", "i", "f"], rng)
        assert moved["kept"] == 1 and moved["c"] != "a" and moved["i"] != 50 and abs(moved["i"] - 50) <= 10
        assert moved["c"] in ("b", "c") and 1e-4 <= moved["f"] <= 1.0 and moved["f"] != 0.01


def test_a_nested_choice_is_refused_naming_its_key() -> None:
    nested = {"_type": "choice", "_value": [{"_name": "a"}, {"_name": "b"}]}
    with pytest.raises(SearchSpaceError, match="'x'.*nested"):
        optuna_tuner(space({"x": nested}))


# -- class arguments --------------------------------------------------------------------------------


def check(name: str = "Optuna", **class_args: Any) -> None:
    check_tuner_config(TunerConfig(name=name, class_args=class_args))


def test_an_unknown_sampler_is_refused_with_the_list() -> None:
    with pytest.raises(
        TunerError, match=r"classArgs.sampler: unknown sampler 'TPe'.*'TPE'.*TPE, GP, NSGAII, QMC"
    ):
        check(sampler="TPe")


def test_an_unknown_sampler_argument_is_refused_naming_it_with_the_accepted_ones() -> None:
    with pytest.raises(TunerError) as info:
        check(sampler="TPE", sampler_args={"n_startup": 5})
    message = str(info.value)
    assert "sampler_args.n_startup" in message and "'n_startup_trials'" in message
    assert "accepted: consider_prior" in message and "seed" not in message.split("accepted:")[1]


def test_a_sampler_argument_that_is_not_json_is_not_accepted() -> None:
    with pytest.raises(TunerError, match="sampler_args.gamma"):
        check(sampler_args={"gamma": 0.25})


def test_a_bad_sampler_argument_value_is_refused_at_create_time() -> None:
    with pytest.raises(
        TunerError, match="sampler_args: Optuna's NSGAII sampler refused them: .*population_size"
    ):
        check(sampler="NSGAII", sampler_args={"population_size": 1})


def test_tpe_is_optuna_with_the_tpe_sampler_and_takes_no_sampler() -> None:
    check("TPE", optimize_mode="minimize", sampler_args={"n_startup_trials": 5})
    with pytest.raises(TunerError, match="classArgs.sampler: TPE takes no argument 'sampler'"):
        check("TPE", sampler="GP")


@pytest.mark.parametrize(("name", "sampler"), [("Anneal", "TPE"), ("GPTuner", "GP"), ("SMAC", "TPE")])
def test_an_nni_hpo_tuner_name_points_to_the_optuna_sampler_for_it(name: str, sampler: str) -> None:
    with pytest.raises(TunerError, match=rf"NNI's {name} is not built in.*name: Optuna.*sampler: {sampler}"):
        check(name)


def test_without_optuna_the_tuner_is_refused_in_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    shim = tmp_path / "optuna"
    shim.mkdir()
    (shim / "__init__.py").write_text("raise ImportError('No module named optuna')\n")
    code = (
        "from manager.config import TunerConfig\n"
        "from manager.tuners.registry import check_tuner_config\n"
        "try:\n    check_tuner_config(TunerConfig(name='Optuna', class_args={}))\n"
        "except ValueError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout == "tuner Optuna needs optuna: pip install 'nasctl[optuna]'\n", done.stderr


def test_qmc_refuses_a_space_with_choices_naming_the_key() -> None:
    with pytest.raises(SearchSpaceError, match="'conv'.*QMC sampler searches numbers only"):
        optuna_tuner(
            space({"lr": {"_type": "uniform", "_value": [0, 1]}, "conv": layer("a", "b")}), sampler="QMC"
        )


def test_qmc_searches_a_space_of_numbers() -> None:
    numbers = space(
        {"lr": {"_type": "loguniform", "_value": [1e-4, 1]}, "n": {"_type": "randint", "_value": [1, 9]}}
    )
    tuner = optuna_tuner(numbers, sampler="QMC")
    proposals = [tuner.generate_parameters(i) for i in range(8)]
    assert all(1e-4 <= p["lr"] <= 1 and 1 <= p["n"] <= 8 for p in proposals)


def test_cmaes_moves_towards_the_optimum_of_a_space_of_numbers() -> None:
    numbers = space(
        {"x": {"_type": "uniform", "_value": [-5, 5]}, "y": {"_type": "uniform", "_value": [-5, 5]}}
    )
    tuner = optuna_tuner(numbers, sampler="CmaEs", optimize_mode="minimize")
    distances = []
    for i in range(60):
        p = tuner.generate_parameters(i)
        distances.append((p["x"] - 2) ** 2 + (p["y"] + 1) ** 2)
        tuner.receive_trial_result(i, p, distances[-1])
        tuner.trial_end(i, True)
    assert statistics.mean(distances[-10:]) < statistics.mean(distances[:10]) / 4


def test_optuna_logs_no_info_line_per_trial_and_the_root_logger_is_untouched() -> None:
    root = logging.getLogger().level
    optuna_tuner(space({"conv": layer("a", "b")}))
    assert logging.getLogger("optuna").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger().level == root


# -- ask and tell -------------------------------------------------------------------------------------

NB201_LIKE = space({f"edge{i}": layer("none", "skip", "conv1", "conv3", "pool") for i in range(6)})
WEIGHTS = {"none": 0.0, "skip": 0.3, "conv1": 0.6, "conv3": 1.0, "pool": 0.2}


def score(arch: dict[str, Any]) -> float:
    """Additive over the edges, as NAS-Bench-201's accuracy roughly is; best: conv3 everywhere."""
    return sum(WEIGHTS[arch[f"edge{i}"]["_value"]] for i in range(6))


def test_a_failed_trial_without_a_result_is_told_fail() -> None:
    tuner = optuna_tuner(NB201_LIKE)
    tuner.generate_parameters(0)
    tuner.trial_end(0, False)
    assert checkpoint_trials(tuner)[0][0] == "FAIL"


def test_results_out_of_order_are_told_to_their_own_trials() -> None:
    tuner = optuna_tuner(NB201_LIKE)
    archs = [tuner.generate_parameters(i) for i in range(5)]
    for parameter_id in (3, 0, 4, 1, 2):
        tuner.receive_trial_result(parameter_id, archs[parameter_id], score(archs[parameter_id]))
        tuner.trial_end(parameter_id, True)
    axes = axes_for(list(NB201_LIKE), "Optuna")
    told = [
        (state, [a.decode(params) for a in axes], values)
        for state, params, values, _ in checkpoint_trials(tuner)
    ]
    assert told == [("COMPLETE", list(arch.values()), [score(arch)]) for arch in archs]


def test_a_result_that_is_not_a_finite_number_is_told_fail() -> None:
    tuner = optuna_tuner(NB201_LIKE)
    arch = tuner.generate_parameters(0)
    tuner.receive_trial_result(0, arch, float("nan"))
    assert checkpoint_trials(tuner)[0][0] == "FAIL"


def best_after(tuner: Tuner, trials: int) -> float:
    best = -1.0
    for parameter_id in range(trials):
        arch = tuner.generate_parameters(parameter_id)
        best = max(best, score(arch))
        tuner.receive_trial_result(parameter_id, arch, score(arch))
        tuner.trial_end(parameter_id, True)
    return best


def test_tpe_learns_it_beats_random_search_on_a_synthetic_space() -> None:
    def mean_best(name: str) -> float:
        runs = []
        for seed in range(5):
            tuner = create_tuner(TunerConfig(name=name, class_args={"seed": seed}))
            tuner.update_search_space(NB201_LIKE)
            runs.append(best_after(tuner, 40))
        return statistics.mean(runs)

    assert mean_best("TPE") > mean_best("Random") + 0.3


def test_a_resumed_study_keeps_its_trials_and_what_the_sampler_learned() -> None:
    tuner = optuna_tuner(NB201_LIKE, seed=3)
    best_after(tuner, 40)
    state = json.loads(json.dumps(tuner.save_checkpoint()))
    resumed = optuna_tuner(NB201_LIKE, seed=99)
    resumed.load_checkpoint(state)
    assert len(checkpoint_trials(resumed)) == len(state["trials"]) >= 40
    rng = random.Random(0)
    later = [score(resumed.generate_parameters(100 + i)) for i in range(10)]
    at_random = [
        score({f"edge{e}": {"_value": rng.choice(list(WEIGHTS))} for e in range(6)}) for _ in range(200)
    ]
    assert statistics.mean(later) > statistics.mean(at_random) + 1.0  # the 40 results still guide it


def test_a_checkpoint_of_another_space_is_refused() -> None:
    state = optuna_tuner(NB201_LIKE).save_checkpoint()
    other = optuna_tuner(space({"conv": layer("a", "b")}))
    with pytest.raises(TunerError, match="another search space"):
        other.load_checkpoint(state)


# -- several objectives ---------------------------------------------------------------------------------

OBJECTIVES = Objectives.from_config(
    [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency", "mode": "minimize"}], ["latency <= 4"]
)


def metrics(arch: dict[str, Any]) -> dict[str, float]:
    convs = sum(arch[f"edge{i}"]["_value"].startswith("conv") for i in range(6))
    return {"default": score(arch), "accuracy": score(arch), "latency": float(convs)}


def test_nsga2_searches_several_objectives_with_their_directions_and_constraints() -> None:
    config = TunerConfig(
        name="Optuna", class_args={"sampler": "NSGAII", "seed": 0, "sampler_args": {"population_size": 4}}
    )
    tuner = create_tuner(config, OBJECTIVES)
    tuner.update_search_space(NB201_LIKE)
    for parameter_id in range(12):
        arch = tuner.generate_parameters(parameter_id)
        tuner.receive_trial_result(parameter_id, arch, metrics(arch))
        tuner.trial_end(parameter_id, True)
    arch = tuner.generate_parameters(12)
    tuner.receive_trial_result(12, arch, {"accuracy": 1.0})  # no latency: told FAIL
    trials = checkpoint_trials(tuner)
    complete = [t for t in trials if t[0] == "COMPLETE"]
    assert len(complete) == 12 and all(len(values) == 2 for _, _, values, _ in complete)
    assert all(t[3]["constraints:latency <= 4"] == t[2][1] - 4 for t in complete)
    assert trials[-1][0] == "FAIL"


def test_cma_es_refuses_several_objectives() -> None:
    with pytest.raises(TunerError, match="CmaEs searches one objective"):
        try:
            create_tuner(TunerConfig(name="Optuna", class_args={"sampler": "CmaEs"}), OBJECTIVES)
        except TunerError as exc:
            if "needs cmaes" in str(exc):
                pytest.skip("cmaes is not installed")
            raise


def test_imported_results_join_the_study_with_their_constraints() -> None:
    tuner = create_tuner(TunerConfig(name="Optuna", class_args={"seed": 0}), OBJECTIVES)
    tuner.update_search_space(NB201_LIKE)
    arch = {f"edge{i}": "conv3" for i in range(6)}
    tuner.import_data([{"parameter": arch, "value": {"accuracy": 6.0, "latency": 6.0}}])
    ((state, _, values, attrs),) = checkpoint_trials(tuner)
    assert (state, values, attrs) == ("COMPLETE", [6.0, 6.0], {"constraints:latency <= 4": 2.0})


@pytest.mark.parametrize("sampler", ["TPE", "GP", "NSGAII", "Random"])
def test_every_sampler_for_choices_searches_a_nas_space_past_its_random_start(sampler: str) -> None:
    tuner = optuna_tuner(
        NB201_LIKE, sampler=sampler, sampler_args={"n_startup_trials": 4} if sampler in ("TPE", "GP") else {}
    )
    seen = set()
    for parameter_id in range(8):
        arch = tuner.generate_parameters(parameter_id)
        assert NB201_LIKE.parse_architecture(arch) and json.dumps(arch, sort_keys=True) not in seen
        seen.add(json.dumps(arch, sort_keys=True))
        tuner.receive_trial_result(parameter_id, arch, score(arch))
