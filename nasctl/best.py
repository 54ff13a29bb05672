"""The end of a followed experiment: its best architecture, written to a file and printed with
the command that retrains it, and the exit code ``nasctl create --foreground`` ends with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nasctl.app import EXIT_FAILURE, EXIT_INTERRUPTED, echo_json, notice
from trials.status import ExperimentStatus, TrialStatus

if TYPE_CHECKING:
    from nasctl.client import Client

BEST_ARCHITECTURE_FILE = "best_architecture.json"


@dataclass(frozen=True)
class ForegroundResult:
    """How a followed experiment ended: ``exit_code`` is what ``create --foreground`` exits with."""

    experiment: dict[str, Any]
    best_trial: dict[str, Any] | None
    architecture_file: Path | None
    interrupted: bool
    exit_code: int


def report_best(
    client: Client, experiment: Mapping[str, Any], base_dir: Path, interrupted: bool, as_json: bool = False
) -> ForegroundResult:
    """Print the best architecture and write it to ``<experimentDir>/best_architecture.json``."""
    from nasctl.output import format_decision, format_metric

    exp_id = experiment["id"]
    best = client.best(exp_id, 1)
    trial = best[0] if best else None
    path: Path | None = None
    if trial is not None:
        path = Path(experiment["experimentDir"]) / BEST_ARCHITECTURE_FILE
        try:
            path.write_text(json.dumps(trial.get("parameters") or {}, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            notice(f"warning: cannot write {path} ({exc.strerror})")
            path = None
    if interrupted:
        code = EXIT_INTERRUPTED
    elif trial is None or experiment["status"] == ExperimentStatus.ERROR.value:
        code = EXIT_FAILURE
    else:
        code = 0
    result = ForegroundResult(dict(experiment), trial, path, interrupted, code)
    if as_json:
        echo_json(
            {"experiment": experiment, "bestTrial": trial, "architectureFile": str(path) if path else None}
        )
        return result
    click.echo(summary_line(experiment))
    if trial is None:
        click.echo(f"no trial succeeded; see 'nasctl trial ls {exp_id}' and 'nasctl log stderr TRIAL'")
        return result
    click.echo(f"best trial {trial['id']}: final metric {format_metric(trial.get('finalMetric'))}")
    params = trial.get("parameters") or {}
    width = max((len(key) for key in params), default=0)
    for key, value in params.items():
        click.echo(f"  {key.ljust(width)}  {format_decision(value)}")
    if path is not None:
        click.echo(f"architecture: {_short_path(path)}")
        click.echo(f"retrain it:   {_retrain_hint(experiment, base_dir, path)}")
    return result


def summary_line(experiment: Mapping[str, Any]) -> str:
    """``experiment ID STATUS: 20/20 trials done, 2 succeeded, 0 failed, 18 early-stopped, in 27.3s``."""
    from nasctl.output import done_count, elapsed, format_duration

    counts = experiment.get("trialCounts") or {}
    cancelled = sum(
        counts.get(s, 0) for s in (TrialStatus.USER_CANCELED.value, TrialStatus.SYS_CANCELED.value)
    )
    stopped = counts.get(TrialStatus.EARLY_STOPPED.value, 0)
    return (
        f"experiment {experiment['id']} {experiment['status']}: {done_count(experiment)}/"
        f"{experiment.get('maxTrialNumber')} trials done, {counts.get('SUCCEEDED', 0)} succeeded, "
        f"{counts.get('FAILED', 0)} failed"
        + (f", {cancelled} cancelled" if cancelled else "")
        + (f", {stopped} early-stopped" if stopped else "")
        + f", in {format_duration(elapsed(experiment))}"
    )


def _retrain_hint(experiment: Mapping[str, Any], base_dir: Path, arch: Path) -> str:
    """The example's retrain script when it has one, else how to apply the file in any script."""
    code_dir = (experiment.get("config") or {}).get("trialCodeDirectory") or "."
    script = (base_dir / code_dir).resolve() / "retrain.py"
    if script.is_file():
        return f"python {_short_path(script)} --arch {_short_path(arch)}"
    return f"apply_fixed_architecture(model, '{arch}') in your training script"


def _short_path(path: Path) -> str:
    """Relative to the current folder when below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
