"""Finding and building tuners: built-ins by name, custom classes from a folder, NNI-style classes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from manager.config import TunerConfig, parse_config
from manager.tuners.base import CheckedTuner, NniStyleTuner, NoMoreTrials, TunerError
from manager.tuners.random import RandomTuner
from manager.tuners.registry import BUILTIN_TUNERS, check_tuner_config, create_tuner
from trials.searchspace import SearchSpace

CUSTOM_TUNER_DIR = Path(__file__).parent / "data" / "custom_tuner"
REPO = Path(__file__).resolve().parent.parent
SPACE = SearchSpace.from_json(
    {
        "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5"]},
        "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
    }
)


def builtin(name: str, **class_args: Any) -> TunerConfig:
    return TunerConfig(name=name, class_args=class_args)


def custom(
    class_name: str, folder: Path = CUSTOM_TUNER_DIR, file: str | None = None, **args: Any
) -> TunerConfig:
    return TunerConfig(
        name=None, class_args=args, code_directory=folder, class_name=class_name, class_file_name=file
    )


def write_module(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def tuner_error(config: TunerConfig) -> str:
    with pytest.raises(TunerError) as info:
        create_tuner(config)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- built-ins ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Random", "RandomTuner", "RandomNAS"])
def test_builtin_random_is_found_by_name_and_aliases(name: str) -> None:
    tuner = create_tuner(builtin(name, seed=1))
    assert isinstance(tuner, CheckedTuner)
    assert isinstance(tuner.inner, RandomTuner) and tuner.inner.seed == 1


def test_created_tuner_proposes_architectures_for_the_space() -> None:
    tuner = create_tuner(builtin("Random", seed=0))
    tuner.update_search_space(SPACE)
    archs = [tuner.generate_parameters(i) for i in range(4)]
    assert len({str(a) for a in archs}) == 4
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(4)


def test_unknown_builtin_name_suggests_the_closest() -> None:
    message = tuner_error(builtin("Randon"))
    assert message.startswith("tuner.name: unknown tuner 'Randon' (did you mean 'Random'?); built-in: Random")


def test_unknown_class_arg_is_named_with_the_accepted_ones() -> None:
    message = tuner_error(builtin("Random", sead=3))
    assert message == (
        "tuner.classArgs.sead: Random takes no argument 'sead' (did you mean 'seed'?); accepted: seed, optimize_mode"
    )


def test_bad_class_arg_value_is_refused() -> None:
    message = tuner_error(builtin("Random", optimize_mode="best"))
    assert message == "tuner.classArgs.optimize_mode: must be maximize or minimize, got 'best'"


def test_check_tuner_config_refuses_bad_class_args_without_building() -> None:
    with pytest.raises(TunerError, match="tuner.classArgs.seed: must be a whole number"):
        check_tuner_config(builtin("Random", seed="x"))
    check_tuner_config(builtin("Random", seed=4, optimize_mode="minimize"))


def test_adding_a_builtin_is_one_registry_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(BUILTIN_TUNERS, "FirstCandidate", "my_tuner:FirstCandidateTuner")
    monkeypatch.syspath_prepend(str(CUSTOM_TUNER_DIR))
    config = parse_config({"trialCommand": "x", "tuner": {"name": "FirstCandidate"}}, tmp_path)
    tuner = create_tuner(config.tuner)
    assert type(tuner.inner).__name__ == "FirstCandidateTuner"


def test_registry_imports_tuner_modules_only_when_asked() -> None:
    code = (
        "import sys, manager.config, manager.tuners.registry, manager.gpu; "
        "print('manager.tuners.random' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- custom tuners from a folder ------------------------------------------------------------------


def test_custom_tuner_subclass_loads_from_code_directory() -> None:
    tuner = create_tuner(custom("my_tuner.FirstCandidateTuner", limit=2, tag="t"))
    assert type(tuner.inner).__name__ == "FirstCandidateTuner"
    assert (tuner.inner.limit, tuner.inner.tag) == (2, "t")


def test_custom_tuner_short_form_answer_reaches_the_daemon_in_full_form() -> None:
    tuner = create_tuner(custom("my_tuner.FirstCandidateTuner"))
    tuner.update_search_space(SPACE)
    assert tuner.generate_parameters(0) == {
        "conv1": {"_value": "conv3x3", "_idx": 0},
        "skip": {"_value": ["in0"], "_idx": [0]},
    }
    with pytest.raises(NoMoreTrials):
        tuner.generate_parameters(1)


def test_custom_tuner_by_v1_class_file_name() -> None:
    tuner = create_tuner(custom("FirstCandidateTuner", file="my_tuner.py"))
    assert type(tuner.inner).__name__ == "FirstCandidateTuner"


def test_custom_tuner_class_args_are_checked_against_its_signature() -> None:
    message = tuner_error(custom("my_tuner.FirstCandidateTuner", limt=3))
    assert message.startswith("tuner.classArgs.limt: my_tuner.FirstCandidateTuner takes no argument 'limt'")


def test_missing_required_class_arg_is_named(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "needs.py",
        """
        class Needs:
            def __init__(self, population_size):
                pass
            def update_search_space(self, s): pass
            def generate_parameters(self, i): pass
            def receive_trial_result(self, i, p, v): pass
    """,
    )
    message = tuner_error(custom("needs.Needs", folder=tmp_path))
    assert message == "tuner.classArgs.population_size: missing; needs.Needs requires it"


def test_missing_code_directory_is_refused(tmp_path: Path) -> None:
    message = tuner_error(custom("my_tuner.X", folder=tmp_path / "gone"))
    assert message == f"tuner.codeDirectory: folder {tmp_path / 'gone'} does not exist"


def test_missing_module_file_is_refused(tmp_path: Path) -> None:
    message = tuner_error(custom("nothere.X", folder=tmp_path))
    assert message == f"tuner.className: no module 'nothere' (file nothere.py) in {tmp_path}"


def test_missing_class_file_is_refused(tmp_path: Path) -> None:
    message = tuner_error(custom("X", folder=tmp_path, file="nothere.py"))
    assert message == f"tuner.classFileName: file {tmp_path / 'nothere.py'} does not exist"


def test_missing_class_suggests_the_closest() -> None:
    message = tuner_error(custom("my_tuner.FirstCandidateTunr"))
    assert "has no class 'FirstCandidateTunr' (did you mean 'FirstCandidateTuner'?)" in message


def test_import_error_in_users_file_is_one_line(tmp_path: Path) -> None:
    write_module(tmp_path, "nni_port.py", "from nni.tuner import Tuner\n")
    message = tuner_error(custom("nni_port.MyTuner", folder=tmp_path))
    assert message == (
        f"tuner.className: importing {tmp_path / 'nni_port.py'} failed: ModuleNotFoundError: No module named 'nni'"
    )


def test_syntax_error_in_users_file_gives_the_line(tmp_path: Path) -> None:
    write_module(tmp_path, "broken.py", "x = 1\ndef f(:\n")
    message = tuner_error(custom("Broken", folder=tmp_path, file="broken.py"))
    assert message.startswith(f"tuner.classFileName: importing {tmp_path / 'broken.py'} failed: SyntaxError:")
    assert message.endswith("(broken.py, line 2)")


def test_class_without_tuner_methods_is_refused() -> None:
    message = tuner_error(custom("my_tuner.NotATuner"))
    assert message.startswith(
        "tuner.className: my_tuner.NotATuner is not a tuner; subclass manager.tuners.base.Tuner"
    )


def test_constructor_failure_is_one_line(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "angry.py",
        """
        class Angry:
            def __init__(self):
                raise RuntimeError("no GPU\\nfor me")
            def update_search_space(self, s): pass
            def generate_parameters(self, i): pass
            def receive_trial_result(self, i, p, v): pass
    """,
    )
    assert tuner_error(custom("angry.Angry", folder=tmp_path)) == (
        "tuner angry.Angry: constructor failed: RuntimeError: no GPU for me"
    )


def test_neither_name_nor_class_is_refused() -> None:
    assert (
        tuner_error(TunerConfig(name=None))
        == "tuner: give name (a built-in tuner) or className (a custom tuner)"
    )


def test_users_module_may_import_its_neighbours(tmp_path: Path) -> None:
    write_module(tmp_path, "helper_for_h1.py", "CHOICE = 1\n")
    write_module(
        tmp_path,
        "uses_helper.py",
        """
        from helper_for_h1 import CHOICE

        class Uses:
            def update_search_space(self, s): self.keys = list(s)
            def generate_parameters(self, i): return {k: CHOICE for k in self.keys}
            def receive_trial_result(self, i, p, v): pass
    """,
    )
    tuner = create_tuner(custom("uses_helper.Uses", folder=tmp_path))
    tuner.update_search_space(SPACE)
    assert tuner.generate_parameters(0)["conv1"] == {"_value": "conv5x5", "_idx": 1}


def test_same_file_name_in_two_folders_loads_two_classes(tmp_path: Path) -> None:
    for tag in ("a", "b"):
        write_module(
            tmp_path / tag,
            "same_name.py",
            f"""
            class T:
                TAG = {tag!r}
                def update_search_space(self, s): pass
                def generate_parameters(self, i): pass
                def receive_trial_result(self, i, p, v): pass
        """,
        )
    tags = [
        create_tuner(custom("T", folder=tmp_path / t, file="same_name.py")).inner.user_tuner.TAG for t in "ab"
    ]
    assert tags == ["a", "b"]


def test_check_tuner_config_runs_no_user_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    write_module(
        tmp_path,
        "loud.py",
        f"""
        open({str(marker)!r}, "w").close()

        class Loud:
            def update_search_space(self, s): pass
            def generate_parameters(self, i): pass
            def receive_trial_result(self, i, p, v): pass
    """,
    )
    config = custom("loud.Loud", folder=tmp_path)
    check_tuner_config(config)
    assert not marker.exists()
    create_tuner(config)
    assert marker.exists()


def test_check_tuner_config_refuses_a_missing_module(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="no module 'ghost'"):
        check_tuner_config(custom("ghost.G", folder=tmp_path))


# -- NNI-style tuners (no nasctl base class) ---------------------------------------------------------


def nni_tuner(**args: Any) -> CheckedTuner:
    tuner = create_tuner(custom("NniStyleTuner", file="my_tuner.py", **args))
    assert isinstance(tuner, CheckedTuner) and isinstance(tuner.inner, NniStyleTuner)
    return tuner


def test_nni_style_tuner_gets_the_space_as_a_plain_dict() -> None:
    tuner = nni_tuner()
    tuner.update_search_space(SPACE)
    assert tuner.inner.user_tuner.search_space == SPACE.to_json()


def test_nni_style_tuner_answers_in_full_form() -> None:
    tuner = nni_tuner()
    tuner.update_search_space(SPACE)
    assert tuner.generate_parameters(0) == {
        "conv1": {"_value": "conv5x5", "_idx": 1},
        "skip": {"_value": ["in0"], "_idx": [0]},
    }


def test_nni_no_more_trial_error_means_no_more_trials() -> None:
    tuner = nni_tuner(budget=1)
    tuner.update_search_space(SPACE)
    tuner.generate_parameters(0)
    with pytest.raises(NoMoreTrials, match="budget used up"):
        tuner.generate_parameters(1)


def test_nni_style_tuner_receives_results_and_trial_ends() -> None:
    tuner = nni_tuner()
    tuner.update_search_space(SPACE)
    params = tuner.generate_parameters(0)
    tuner.trial_end(0, True)
    tuner.receive_trial_result(0, params, 0.75)
    assert tuner.inner.user_tuner.received == [(0, params, 0.75)]
    assert tuner.inner.user_tuner.ended == [(0, True)]


def test_nni_style_checkpoint_methods_without_arguments_are_handled() -> None:
    tuner = nni_tuner()
    assert tuner.save_checkpoint() == {"received": 0}
    tuner.load_checkpoint({"received": 0})  # NNI's load_checkpoint() takes no state: not called
    assert tuner.inner.user_tuner.checkpoint is None


def test_invalid_architecture_from_a_tuner_is_a_tuner_error() -> None:
    tuner = create_tuner(custom("BadOutputTuner", file="my_tuner.py"))
    tuner.update_search_space(SPACE)
    with pytest.raises(TunerError, match=r"'conv1': unknown candidate 'no-such-op'.*\(parameter 0\)$"):
        tuner.generate_parameters(0)
