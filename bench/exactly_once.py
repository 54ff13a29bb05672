"""Pieces that prove an experiment ran each trial exactly once, whatever crashed on the way.

Shared by ``bench/crash_stress.py`` and the crash-point tests (``from bench.exactly_once import
...`` with the repository root on ``sys.path``). Three witnesses, each kept outside the daemon's
own bookkeeping so a bug there cannot hide itself:

- the trial (:data:`COUNTING_TRIAL`) appends one line per process start to ``runs`` in its folder;
- the tuner (``_ledger_tuner.LedgerTuner``) keeps in its checkpointed state the parameter ids
  whose result it heard, refuses a second one, and leaves its final list in ``ledger.json``;
- the store, read over REST, must hold every intermediate result once and one final.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from nasctl.client import Client, ClientError

BENCH = Path(__file__).resolve().parent
COUNTING_TRIAL = BENCH / "_counting_trial.py"
LEDGER_TUNER_DIR = BENCH
LEDGER_TUNER_FILE = "_ledger_tuner.py"
LEDGER_TUNER_CLASS = "LedgerTuner"
LEDGER_FILE = "ledger.json"
RUNS_FILE = "runs"
EXPERIMENT_ID_ENV = "NASCTL_EXPERIMENT_ID"

#: 8 layer choices of 4 candidates: 65,536 architectures, so the tuner never runs dry.
SEARCH_SPACE: dict[str, Any] = {
    f"layer{i}": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool", "skip"]}
    for i in range(8)
}


def experiment_config(
    folder: Path, trials: int, concurrency: int, reports: int, interval: float
) -> dict[str, Any]:
    """A config that runs ``trials`` counting trials under the ledger tuner, whose ledger goes to ``folder``."""
    return {
        "experimentName": "exactly-once",
        "trialCommand": f"{sys.executable} {COUNTING_TRIAL.name} --reports {reports} --interval {interval}",
        "trialCodeDirectory": str(COUNTING_TRIAL.parent),
        "searchSpace": SEARCH_SPACE,
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "tuner": {
            "codeDirectory": str(LEDGER_TUNER_DIR),
            "classFileName": LEDGER_TUNER_FILE,
            "className": LEDGER_TUNER_CLASS,
            "classArgs": {"ledger_dir": str(folder), "seed": 0},
        },
    }


def check_exactly_once(
    client: Client, experiment_id: str, ledger: Path, trials: int, reports: int
) -> list[str]:
    """Every way the experiment broke "each trial ran once, each result stored and heard once", in words.

    ``ledger`` is the ledger file (``<folder>/ledger.json``, ``folder`` as given to
    :func:`experiment_config`). An empty list means the experiment is fine.
    """
    problems: list[str] = []
    try:
        experiment = client.get_experiment(experiment_id)
        records = list(client.iter_trials(experiment_id))
        metrics = _all_metrics(client, experiment_id)
    except ClientError as exc:
        return [f"cannot read the experiment: {exc}"]
    if experiment.get("status") != "DONE":
        why = f" (error: {experiment['error']})" if experiment.get("error") else ""
        problems.append(f"experiment status {experiment.get('status')}, not DONE{why}")
    if len(records) != trials:
        problems.append(f"{len(records)} trials, not {trials}")
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for metric in metrics:
        by_trial.setdefault(metric["trialId"], []).append(metric)
    for trial in sorted(records, key=lambda t: t["sequenceId"]):
        name = f"trial {trial['sequenceId']} ({trial['id']})"
        if trial["status"] != "SUCCEEDED":
            problems.append(
                f"{name}: {trial['status']}, not SUCCEEDED ({trial.get('reason') or 'no reason'})"
            )
        runs = _runs(Path(trial["trialDir"]))
        if len(runs) != 1:
            pids = ", ".join(line.split()[0] for line in runs if line.split())
            problems.append(f"{name}: ran {len(runs)} times (pids {pids or 'none'})")
        mine = by_trial.get(trial["id"], [])
        periodical = Counter(m["sequence"] for m in mine if m["type"] == "PERIODICAL")
        expected = Counter(range(reports))
        if periodical != expected:
            problems.append(
                f"{name}: intermediate sequences stored {sorted(periodical.elements())}, "
                f"not {sorted(expected.elements())}"
            )
        finals = sum(1 for m in mine if m["type"] == "FINAL")
        if finals != 1:
            problems.append(f"{name}: {finals} final results stored, not 1")
    problems += _ledger_problems(ledger, [t["parameterId"] for t in records])
    return problems


def _all_metrics(client: Client, experiment_id: str) -> list[dict[str, Any]]:
    """Every stored metric of the experiment, page after page."""
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = client.metrics(experiment_id, since=since, limit=1000)
        items = page.get("items", [])
        out += items
        if not items:
            return out
        since = int(page.get("next") or items[-1]["id"])


def _runs(trial_dir: Path) -> list[str]:
    try:
        return [line for line in (trial_dir / RUNS_FILE).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _ledger_problems(ledger: Path, parameter_ids: list[int]) -> list[str]:
    """The tuner's final ledger against the trials: each id exactly once, nothing else."""
    try:
        received = json.loads(ledger.read_text())
    except FileNotFoundError:
        received = []
    except (OSError, ValueError) as exc:
        return [f"ledger {ledger}: unreadable ({exc})"]
    counts = Counter(received)
    problems = [f"ledger: parameter {pid} received {n} times" for pid, n in sorted(counts.items()) if n > 1]
    missing = sorted(set(parameter_ids) - set(counts))
    extra = sorted(set(counts) - set(parameter_ids))
    if missing:
        problems.append(f"ledger: no result received for parameters {missing}")
    if extra:
        problems.append(f"ledger: results received for parameters no trial has {extra}")
    return problems


def trial_processes(experiment_id: str) -> list[psutil.Process]:
    """Live processes started for ``experiment_id`` (their environment names it): what a stop must leave none of."""
    found: list[psutil.Process] = []
    wanted = str(experiment_id)
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(EXPERIMENT_ID_ENV) == wanted:
                found.append(proc)
    return found
