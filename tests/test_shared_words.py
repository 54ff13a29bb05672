"""The words every room shares (statuses, metric records, durations, numbers, messages, search-log
files), defined once in ``trials/`` and read the same way by the SDK, the daemon and the CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from manager.config import ConfigError, parse_config
from trials.durations import parse_duration
from trials.errors import SearchSpaceError
from trials.messages import did_you_mean, one_line
from trials.metrics import FINAL, PERIODICAL, metric_default, parse_metric_line
from trials.numbers import as_float, is_number, is_whole
from trials.searchspace import SearchSpace
from trials.status import (
    ACTIVE_EXPERIMENT_STATUSES,
    FINISHED_EXPERIMENT_STATUSES,
    TERMINAL_TRIAL_STATUSES,
    ExperimentStatus,
    TrialStatus,
)

HUGE = 10**400  # a whole number no float can hold: float(HUGE) raises OverflowError

SHARED_MODULES = (
    "trials.status",
    "trials.metrics",
    "trials.durations",
    "trials.numbers",
    "trials.messages",
    "trials.searchlog_files",
)


def test_the_shared_words_import_without_torch() -> None:
    code = f"import sys; import {', '.join(SHARED_MODULES)}; assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_a_number(value: bool) -> None:
    assert not is_number(value) and not is_whole(value) and as_float(value) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_not_numbers(value: float) -> None:
    assert not is_number(value) and not is_whole(value) and as_float(value) is None


@pytest.mark.parametrize("value", ["1", None, [1], {"default": 1}])
def test_other_types_are_not_numbers(value: object) -> None:
    assert not is_number(value) and as_float(value) is None


def test_a_huge_int_is_a_whole_number_that_no_float_holds() -> None:
    assert is_number(HUGE) and is_whole(HUGE) and is_whole(-HUGE)
    assert as_float(HUGE) is None


def test_whole_means_no_fraction() -> None:
    assert is_whole(3) and is_whole(3.0) and is_whole(-2) and is_whole(0)
    assert not is_whole(2.5)
    assert is_number(2.5) and as_float(2) == 2.0 and isinstance(as_float(2), float)


def test_a_huge_count_in_a_config_is_refused_as_too_large(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trialConcurrency: must be at most 2147483647"):
        parse_config({"trialCommand": "x", "trialConcurrency": HUGE}, tmp_path, source="exp.yaml")


def test_a_huge_bound_in_a_search_space_is_refused() -> None:
    with pytest.raises(SearchSpaceError, match="must be 2 finite numbers"):
        SearchSpace.from_json({"lr": {"_type": "uniform", "_value": [0, HUGE]}})


def test_a_huge_int_in_an_architecture_is_refused_not_a_crash() -> None:
    space = SearchSpace.from_json({"n": {"_type": "randint", "_value": [0, 10]}})
    with pytest.raises(ValueError, match="randint takes a whole number"):
        space.parse_architecture({"n": HUGE})


def test_a_huge_count_in_a_patch_is_refused_with_its_range() -> None:
    from manager.http.bodies import parse_patch
    from manager.http.errors import ApiError

    with pytest.raises(ApiError, match="trialConcurrency: must be a whole number from 1 to"):
        parse_patch({"trialConcurrency": HUGE})


# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (0.5, 0.5),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1.5d", 129600.0),
        (" 2 H ", 7200.0),
    ],
)
def test_a_duration_is_seconds_or_a_number_with_a_unit(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_a_string_without_a_unit_is_seconds_only_on_the_command_line() -> None:
    with pytest.raises(ValueError):
        parse_duration("90")
    assert parse_duration("90", bare_text_is_seconds=True) == 90.0


@pytest.mark.parametrize(
    "value",
    [0, -5, "0s", "-5m", "10x", "", "m", "1e3s", True, math.nan, math.inf, HUGE, "9" * 400 + "d", None],
)
def test_what_is_no_duration(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value, bare_text_is_seconds=True)


# -- metric records -------------------------------------------------------------------------------


def test_a_metric_record_is_read_into_its_parts() -> None:
    report = parse_metric_line(
        b'{"type": "FINAL", "sequence": 0, "value": {"default": 0.5, "loss": 1}, "time": 2.5}'
    )
    assert (report.kind, report.default_value, report.time_ms, report.is_final) == (FINAL, 0.5, 2500, True)
    assert (
        parse_metric_line(b'{"type": "PERIODICAL", "sequence": 3, "value": 1, "time": 1}').kind == PERIODICAL
    )


def test_a_nan_metric_is_kept() -> None:
    assert math.isnan(metric_default(math.nan))


@pytest.mark.parametrize("value", [True, "0.5", None, {"loss": 1}, HUGE])
def test_a_metric_that_is_no_number_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        metric_default(value)


def test_a_record_with_a_huge_value_or_time_is_invalid_not_a_crash() -> None:
    with pytest.raises(ValueError, match="metric must fit a float"):
        parse_metric_line(f'{{"type": "FINAL", "sequence": 0, "value": {HUGE}, "time": 1}}'.encode())
    with pytest.raises(ValueError, match="time must be seconds since the epoch, got an integer of"):
        parse_metric_line(f'{{"type": "FINAL", "sequence": 0, "value": 1, "time": {HUGE}}}'.encode())


# -- statuses -------------------------------------------------------------------------------------


def test_a_status_sent_as_text_is_found_among_the_members() -> None:
    assert "RUNNING" in ACTIVE_EXPERIMENT_STATUSES and "DONE" in FINISHED_EXPERIMENT_STATUSES
    assert "SUCCEEDED" in TERMINAL_TRIAL_STATUSES and "WAITING" not in TERMINAL_TRIAL_STATUSES


def test_every_experiment_status_is_active_or_finished() -> None:
    assert set(ExperimentStatus) == ACTIVE_EXPERIMENT_STATUSES | FINISHED_EXPERIMENT_STATUSES
    assert not ACTIVE_EXPERIMENT_STATUSES & FINISHED_EXPERIMENT_STATUSES
    assert [s for s in ExperimentStatus if s.is_active] == [
        ExperimentStatus.INITIALIZED,
        ExperimentStatus.RUNNING,
        ExperimentStatus.NO_MORE_TRIAL,
        ExperimentStatus.STOPPING,
    ]


def test_only_waiting_and_running_trials_may_still_run() -> None:
    assert {s for s in TrialStatus if not s.is_terminal} == {TrialStatus.WAITING, TrialStatus.RUNNING}


# -- messages -------------------------------------------------------------------------------------


def test_a_text_is_squeezed_onto_one_line() -> None:
    assert one_line("  first\tline  \n\n second  line\n") == "first line second line"


def test_an_exception_says_its_type() -> None:
    assert one_line(ValueError("bad\n  value")) == "ValueError: bad value"
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt"


def test_a_syntax_error_says_its_file_and_line() -> None:
    with pytest.raises(SyntaxError) as info:
        compile("x = (", "/somewhere/my_tuner.py", "exec")
    assert one_line(info.value).startswith("SyntaxError: ")
    assert one_line(info.value).endswith("(my_tuner.py, line 1)")


def test_did_you_mean_names_the_closest_option_or_nothing() -> None:
    assert did_you_mean("trialConcurency", ["trialConcurrency", "trialCommand"]) == (
        " (did you mean 'trialConcurrency'?)"
    )
    assert did_you_mean("zzz", ["trialConcurrency"]) == ""
