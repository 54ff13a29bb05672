"""Finding and building assessors: built-ins by name, custom classes from a folder, NNI-style classes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from manager.assessors.adapter import CheckedAssessor, NniStyleAssessor
from manager.assessors.asha import ASHAAssessor
from manager.assessors.base import AssessorError, AssessResult
from manager.assessors.curvefitting import CurvefittingAssessor
from manager.assessors.medianstop import MedianstopAssessor
from manager.assessors.registry import builtin_assessor_names, check_assessor_config, create_assessor
from manager.config import TunerConfig

CUSTOM = Path(__file__).parent / "data" / "custom_assessor"
REPO = Path(__file__).resolve().parent.parent


def builtin(name: str, **class_args: Any) -> TunerConfig:
    return TunerConfig(name=name, class_args=class_args)


def custom(class_name: str, folder: Path = CUSTOM, file: str | None = None, **args: Any) -> TunerConfig:
    return TunerConfig(
        name=None, class_args=args, code_directory=folder, class_name=class_name, class_file_name=file
    )


def error(config: TunerConfig) -> str:
    with pytest.raises(AssessorError) as info:
        create_assessor(config)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- built-ins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "cls"),
    [
        ("Medianstop", {}, MedianstopAssessor),
        ("Curvefitting", {"epoch_num": 20}, CurvefittingAssessor),
        ("ASHA", {}, ASHAAssessor),
        ("SuccessiveHalving", {"reduction_factor": 4}, ASHAAssessor),
    ],
)
def test_builtins_are_found_by_nni_names_and_aliases(name: str, args: dict[str, Any], cls: type) -> None:
    assessor = create_assessor(builtin(name, **args))
    assert isinstance(assessor, CheckedAssessor) and type(assessor.inner) is cls


def test_builtin_names_list_nni_spellings_and_asha() -> None:
    assert builtin_assessor_names() == ("Medianstop", "Curvefitting", "ASHA", "SuccessiveHalving")


def test_class_args_reach_the_constructor() -> None:
    assessor = create_assessor(builtin("ASHA", optimize_mode="minimize", grace_period=2, max_t=50))
    assert isinstance(assessor, CheckedAssessor)
    inner = assessor.inner
    assert isinstance(inner, ASHAAssessor)
    assert (inner.optimize_mode, inner.grace_period, inner.reduction_factor, inner.max_t) == (
        "minimize",
        2,
        3,
        50,
    )


def test_unknown_builtin_name_suggests_the_closest() -> None:
    message = error(builtin("Medianstp"))
    assert message.startswith(
        "assessor.name: unknown assessor 'Medianstp' (did you mean 'Medianstop'?); built-in: "
    )


def test_unknown_class_arg_is_named_with_the_closest() -> None:
    message = error(builtin("Medianstop", start_stp=3))
    assert message.startswith("assessor.classArgs.start_stp: Medianstop takes no argument 'start_stp'")
    assert "(did you mean 'start_step'?)" in message


def test_a_missing_required_class_arg_is_named() -> None:
    assert error(builtin("Curvefitting")).startswith("assessor.classArgs.epoch_num: missing")


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("Medianstop", {"optimize_mode": "max"}, "optimize_mode"),
        ("Medianstop", {"start_step": -1}, "start_step"),
        ("Curvefitting", {"epoch_num": 0}, "epoch_num"),
        ("Curvefitting", {"epoch_num": 10, "threshold": 1.5}, "threshold"),
        ("Curvefitting", {"epoch_num": 10, "threshold": 0}, "threshold"),
        ("Curvefitting", {"epoch_num": 10, "gap": 0}, "gap"),
        ("ASHA", {"reduction_factor": 1}, "reduction_factor"),
        ("ASHA", {"grace_period": 0}, "grace_period"),
        ("ASHA", {"grace_period": 3, "max_t": 3}, "max_t"),
        ("ASHA", {"grace_period": True}, "grace_period"),
    ],
)
def test_a_bad_class_arg_value_is_named_at_check_time(name: str, args: dict[str, Any], field: str) -> None:
    with pytest.raises(AssessorError, match=rf"^assessor\.classArgs\.{field}: "):
        check_assessor_config(builtin(name, **args))
    assert error(builtin(name, **args)).startswith(f"assessor.classArgs.{field}: ")


def test_registry_imports_no_assessor_module_until_asked() -> None:
    code = (
        "import sys, manager.assessors.registry; "
        "print(any(m in sys.modules for m in ('manager.assessors.medianstop', 'manager.assessors.curvefitting', "
        "'manager.assessors.asha', 'numpy', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


# -- custom assessors -----------------------------------------------------------------------------


def test_a_custom_subclass_loads_from_code_directory_with_its_class_args() -> None:
    assessor = create_assessor(custom("my_assessor.HalfBestAssessor", patient=True))
    assert isinstance(assessor, CheckedAssessor)
    assert type(assessor.inner).__name__ == "HalfBestAssessor"
    assert assessor.assess_trial("t", [0.1, 0.2]) is AssessResult.Good


def test_a_custom_class_loads_from_a_class_file() -> None:
    assessor = create_assessor(custom("HalfBestAssessor", file="my_assessor.py"))
    assert assessor.assess_trial("t", [0.1]) is AssessResult.Good
    assert assessor.assess_trial("t", [0.1, 0.2]) is AssessResult.Bad


def test_an_nni_style_class_is_adapted_and_its_own_verdicts_understood() -> None:
    assessor = create_assessor(custom("my_assessor.ThresholdAssessor", ratio=0.5))
    assert isinstance(assessor, CheckedAssessor) and isinstance(assessor.inner, NniStyleAssessor)
    assessor.assess_trial("a", [0.8])
    assessor.trial_end("a", True)
    assert assessor.assess_trial("b", [0.3]) is AssessResult.Bad
    assert assessor.assess_trial("c", [0.5]) is AssessResult.Good
    assert assessor.reason("b") == "ThresholdAssessor"


def test_an_nni_style_verdict_that_is_neither_good_nor_bad_is_one_clear_error() -> None:
    assessor = create_assessor(custom("my_assessor.AnswersMaybe"))
    with pytest.raises(
        AssessorError, match=r"^assessor my_assessor\.AnswersMaybe: assess_trial returned 'maybe'"
    ):
        assessor.assess_trial("t", [0.1])


def test_a_class_that_is_not_an_assessor_is_refused() -> None:
    message = error(custom("my_assessor.NotAnAssessor"))
    assert message.startswith("assessor.className: my_assessor.NotAnAssessor is not an assessor; subclass ")
    assert "assess_trial and trial_end" in message


def test_a_missing_class_suggests_the_closest() -> None:
    message = error(custom("my_assessor.ThresholdAsessor"))
    assert "has no class 'ThresholdAsessor' (did you mean 'ThresholdAssessor'?)" in message


def test_a_custom_config_is_checked_without_running_user_code(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise SystemExit('ran')\n")
    check_assessor_config(custom("boom.Anything", folder=tmp_path))
    with pytest.raises(AssessorError, match=r"^assessor\.classFileName: file .*nothing\.py does not exist"):
        check_assessor_config(custom("X", folder=tmp_path, file="nothing.py"))
    assert error(custom("boom.Anything", folder=tmp_path)).startswith("assessor.className: importing ")


def test_name_and_class_name_together_are_refused() -> None:
    config = TunerConfig(name="ASHA", class_args={}, code_directory=CUSTOM, class_name="my_assessor.X")
    assert error(config).startswith("assessor: give either name")
