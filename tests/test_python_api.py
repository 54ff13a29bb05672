"""``nasctl.Experiment``, the Python interface, against a real detached daemon in a temp home.

The daemon is started on demand by the first ``start()`` (as a script's would be) and stopped at
teardown. Trials are ``tests/trials/cli_trial.py``: no torch, a known space of 12 architectures,
final metric ``0.5 + (sum of the chosen indices) / 10``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemons import shut_down

import nasctl
from nasctl.api.records import Trial
from nasctl.launcher import DaemonState, probe
from trials.status import ExperimentStatus, TrialStatus

TESTS = Path(__file__).resolve().parent
TRIAL_DIR = TESTS / "trials"
CHOICES = ("op", "act", "skip")


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "experimentName": "python-api",
        "trialCommand": "python3 cli_trial.py",
        "trialCodeDirectory": "trials",  # relative: resolves against base_dir (tests/)
        "trialConcurrency": 2,
        "maxTrialNumber": 4,
        "maxTrialDuration": "2m",
        "tuner": {"name": "Random", "classArgs": {"seed": 5}},
    }
    base.update(overrides)
    return base


def expected_value(trial: Trial) -> float:
    indices = [
        v["_idx"] if isinstance(v["_idx"], int) else sum(v["_idx"]) for v in trial.architecture.values()
    ]
    return 0.5 + sum(indices) / 10


@pytest.fixture(scope="module", autouse=True)
def trials_run_this_python() -> Iterator[None]:
    """Trial commands say ``python3``: make it this interpreter, as ``make demo`` does."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    yield
    os.environ["PATH"] = old


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with no daemon yet: the first ``start()`` of the module starts one."""
    path = tmp_path_factory.mktemp("pyapi") / "home"
    yield path
    shut_down(path)


@pytest.fixture(scope="module")
def finished(home: Path) -> nasctl.Experiment:
    """One experiment whose four trials have ended, shared by the read-only tests."""
    exp = nasctl.Experiment(config(), home=home, base_dir=TESTS).start()
    assert exp.wait(timeout=120, progress=False) is ExperimentStatus.DONE
    return exp


@pytest.fixture(scope="module")
def running(home: Path, finished: nasctl.Experiment) -> Iterator[nasctl.Experiment]:
    """An experiment whose trials sleep a minute; stopped at teardown."""
    exp = nasctl.Experiment(
        config(trialCommand="python3 cli_trial.py --sleep 60"), home=home, base_dir=TESTS
    ).start()
    yield exp
    if exp.status.is_active:
        exp.stop()


# -- import cost ---------------------------------------------------------------------------------


def test_importing_nasctl_and_naming_experiment_imports_nothing_heavy() -> None:
    code = (
        "import sys, nasctl; nasctl.Experiment; nasctl.Trial;"
        "heavy = ('torch', 'sqlalchemy', 'fastapi', 'uvicorn', 'pandas', 'numpy', 'manager', 'IPython');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


# -- a finished experiment -----------------------------------------------------------------------


def test_start_starts_the_daemon_of_the_home_on_demand(home: Path, finished: nasctl.Experiment) -> None:
    assert probe(home).state is DaemonState.RUNNING
    assert finished.home == home and finished.id


def test_wait_returns_the_final_status_and_status_agrees(finished: nasctl.Experiment) -> None:
    assert finished.status is ExperimentStatus.DONE


def test_trials_are_typed_records_with_architecture_and_metrics(finished: nasctl.Experiment) -> None:
    trials = finished.trials()
    assert [t.sequence_id for t in trials] == sorted(t.sequence_id for t in trials)
    assert len(trials) == 4
    for trial in trials:
        assert isinstance(trial, Trial) and trial.status is TrialStatus.SUCCEEDED
        assert set(trial.architecture) == set(CHOICES)
        assert trial.value == pytest.approx(expected_value(trial))
        assert trial.metrics == {"default": trial.value}
        assert trial.duration is not None and trial.duration > 0 and trial.reason is None


def test_choices_are_the_short_form_of_the_architecture(finished: nasctl.Experiment) -> None:
    trial = finished.trials()[0]
    assert trial.choices["op"] == trial.architecture["op"]["_value"]
    assert trial.choices["skip"] == trial.architecture["skip"]["_value"]


def test_trials_filter_by_status(finished: nasctl.Experiment) -> None:
    assert len(finished.trials(TrialStatus.SUCCEEDED)) == 4
    assert finished.trials("FAILED") == []


def test_best_lists_the_highest_metrics_first(finished: nasctl.Experiment) -> None:
    values = sorted((t.value for t in finished.trials()), reverse=True)
    best = finished.best(2)
    assert [t.value for t in best] == pytest.approx(values[:2])


def test_the_best_architecture_is_the_json_a_retrain_reads(
    finished: nasctl.Experiment, tmp_path: Path
) -> None:
    best = finished.best()[0]
    path = best.write_architecture(tmp_path / "best.json")
    assert json.loads(path.read_text()) == best.architecture
    assert best.architecture == {t.id: t for t in finished.trials()}[best.id].architecture


def test_best_refuses_a_k_below_one(finished: nasctl.Experiment) -> None:
    with pytest.raises(ValueError, match="k must be"):
        finished.best(0)


def test_trials_dataframe_has_a_row_per_trial_and_a_column_per_choice(finished: nasctl.Experiment) -> None:
    df = finished.trials_dataframe()
    columns = list(df.columns)
    assert columns[:4] == ["id", "sequence_id", "status", "value"] and columns[-2:] == ["duration", "reason"]
    assert set(columns[4:-2]) == {f"choice.{key}" for key in CHOICES}
    assert len(df) == 4 and set(df["status"]) == {"SUCCEEDED"}
    best = finished.best()[0]
    row = df.set_index("id").loc[best.id]
    assert row["value"] == pytest.approx(best.value) and row["choice.op"] == best.choices["op"]


def test_without_pandas_the_dataframe_error_says_what_to_install(
    finished: nasctl.Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install pandas .*nasctl\[notebook\]"):
        finished.trials_dataframe()


def test_attach_by_id_sees_the_same_experiment(home: Path, finished: nasctl.Experiment) -> None:
    assert finished.id is not None
    attached = nasctl.Experiment.attach(finished.id, home=home)
    assert attached.status is ExperimentStatus.DONE
    assert [t.id for t in attached.trials()] == [t.id for t in finished.trials()]
    assert attached.config["trialCodeDirectory"] == str(TRIAL_DIR)


def test_attach_to_an_unknown_id_is_a_lookup_error(home: Path, finished: nasctl.Experiment) -> None:
    with pytest.raises(LookupError, match="nosuchid"):
        nasctl.Experiment.attach("nosuchid", home=home)


def test_stopping_a_finished_experiment_is_a_state_error(finished: nasctl.Experiment) -> None:
    with pytest.raises(nasctl.ExperimentStateError):
        finished.stop()


def test_starting_twice_is_a_state_error(finished: nasctl.Experiment) -> None:
    with pytest.raises(nasctl.ExperimentStateError, match="resume"):
        finished.start()


def test_reading_before_start_says_to_start(home: Path) -> None:
    exp = nasctl.Experiment(config(), home=home, base_dir=TESTS)
    assert exp.id is None and exp.config["experimentName"] == "python-api"
    with pytest.raises(nasctl.ExperimentStateError, match=r"start\(\)"):
        exp.trials()


def test_leaving_a_with_block_does_not_stop_the_experiment(running: nasctl.Experiment) -> None:
    assert running.id is not None
    with nasctl.Experiment.attach(running.id, home=running.home) as attached:
        assert attached.status.is_active
    assert running.status.is_active


# -- config forms --------------------------------------------------------------------------------


def test_a_yaml_path_resolves_relative_paths_against_its_folder(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "exp.yaml"
    relative = os.path.relpath(TRIAL_DIR, folder)
    path.write_text(yaml.safe_dump(config(trialCodeDirectory=relative, maxTrialNumber=1)))
    exp = nasctl.Experiment(path, home=home).start()
    assert exp.config["trialCodeDirectory"] == str(TRIAL_DIR)


def test_a_dict_resolves_relative_paths_against_the_current_folder(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(TESTS)
    exp = nasctl.Experiment(config(maxTrialNumber=1), home=home).start()
    assert exp.config["trialCodeDirectory"] == str(TRIAL_DIR)


def test_a_parsed_experiment_config_is_accepted(home: Path, tmp_path: Path) -> None:
    from manager.config import load_config

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config(trialCodeDirectory=str(TRIAL_DIR), maxTrialNumber=1)))
    parsed = load_config(path)
    exp = nasctl.Experiment(parsed, home=home).start()
    assert exp.config["trialCodeDirectory"] == str(TRIAL_DIR)
    assert exp.config["maxTrialNumber"] == 1


def test_a_bad_config_is_a_value_error_naming_the_field(home: Path) -> None:
    with pytest.raises(ValueError, match="trialConcurrency") as err:
        nasctl.Experiment(config(trialConcurrency=0), home=home, base_dir=TESTS).start()
    assert isinstance(err.value, nasctl.InvalidConfig) and "\n" not in str(err.value)


def test_a_bad_yaml_config_error_names_the_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config(trialConcurrency=0, trialCodeDirectory=str(TRIAL_DIR))))
    with pytest.raises(nasctl.InvalidConfig, match=r"bad\.yaml: .*trialConcurrency"):
        nasctl.Experiment(path, home=home).start()


def test_a_missing_yaml_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        nasctl.Experiment(tmp_path / "nope.yaml")


def test_a_config_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="YAML path"):
        nasctl.Experiment(42)


# -- waiting, stopping, resuming -----------------------------------------------------------------


def test_wait_with_a_timeout_raises_timeout_error_and_the_experiment_runs_on(
    running: nasctl.Experiment,
) -> None:
    with pytest.raises(TimeoutError, match="runs on"):
        running.wait(timeout=0.3, progress=False)
    assert running.status.is_active


def test_resuming_an_active_experiment_is_a_state_error(running: nasctl.Experiment) -> None:
    with pytest.raises(nasctl.ExperimentStateError):
        running.resume()


def test_wait_is_quiet_outside_a_terminal_and_a_notebook(
    running: nasctl.Experiment, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TimeoutError):
        running.wait(timeout=0.3, progress=True)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_stop_then_resume_runs_the_experiment_to_its_end(home: Path) -> None:
    exp = nasctl.Experiment(
        config(trialCommand="python3 cli_trial.py --sleep 1", maxTrialNumber=3), home=home, base_dir=TESTS
    ).start()
    assert exp.stop().status is ExperimentStatus.STOPPED
    assert exp.resume().status.is_active
    assert exp.wait(timeout=120, progress=False) is ExperimentStatus.DONE
    assert len(exp.trials(TrialStatus.SUCCEEDED)) == 3


# -- records without a daemon --------------------------------------------------------------------


def test_a_dict_result_becomes_metric_columns_and_nan_a_float() -> None:
    rest = {
        "id": "T1",
        "sequenceId": 1,
        "status": "SUCCEEDED",
        "parameters": {"skip": {"_value": ["in1"], "_idx": [1]}},
        "finalMetric": "NaN",
        "finalMetricData": {"default": "NaN", "loss": 0.25},
        "duration": 1.5,
        "reason": "the final result is NaN",
    }
    trial = Trial.from_rest(rest)
    assert trial.value != trial.value and trial.metrics["loss"] == 0.25
    df = nasctl.api.records.trials_dataframe([trial])
    assert list(df.columns) == [
        "id",
        "sequence_id",
        "status",
        "value",
        "choice.skip",
        "metric.loss",
        "duration",
        "reason",
    ]
    assert df.loc[0, "choice.skip"] == ("in1",) and df.loc[0, "metric.loss"] == 0.25


def test_wait_in_a_terminal_draws_the_progress_bar(home: Path, finished: nasctl.Experiment) -> None:
    import pty

    code = f"import nasctl; nasctl.Experiment.attach({finished.id!r}, home={str(home)!r}).wait()"
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower, timeout=60
    )
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the pty is drained
        while chunk := os.read(leader, 65536):
            output += chunk
    os.close(leader)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "[########################] 4/4 trials" in text and "best 4 trials:" in text


def test_trial_records_are_frozen_and_hashable() -> None:
    trial = Trial.from_rest({"id": "T2", "sequenceId": 2, "status": "FAILED", "reason": "exit code 1"})
    with pytest.raises(AttributeError):
        trial.status = TrialStatus.SUCCEEDED  # type: ignore[misc]
    assert trial in {trial} and trial.status is TrialStatus.FAILED and trial.value is None
