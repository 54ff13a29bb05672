"""The Pareto front over REST (``GET /experiments/{id}/pareto``), in the export, and in
``nasctl trial ls --pareto``, against a real daemon whose store holds a multi-objective experiment."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningDaemon, start_daemon
from pareto_data import make_experiment

REPO = Path(__file__).resolve().parents[1]

RESULTS = [
    ("SUCCEEDED", {"accuracy": 0.9, "latency_ms": 20.0}),  # t0000: front
    ("SUCCEEDED", {"accuracy": 0.8, "latency_ms": 5.0}),  # t0001: front
    ("SUCCEEDED", {"accuracy": 0.7, "latency_ms": 25.0}),  # t0002: dominated by t0000
    ("SUCCEEDED", {"accuracy": 0.99, "latency_ms": 90.0}),  # t0003: breaks latency_ms <= 50
    ("FAILED", None),  # t0004: not ranked
    ("SUCCEEDED", {"accuracy": 0.95}),  # t0005: lacks latency_ms, not ranked
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pareto-home")


@pytest.fixture(scope="module")
def experiments(home: Path) -> dict[str, str]:
    multi, _ = make_experiment(home, RESULTS, constraints=["latency_ms <= 50"])
    single, _ = make_experiment(home, [("SUCCEEDED", 0.5)], objectives=None, prefix="s")
    return {"multi": multi, "single": single}


@pytest.fixture(scope="module")
def running(home: Path, experiments: dict[str, str]) -> Iterator[RunningDaemon]:
    daemon = start_daemon(home, kill_grace=2.0)
    yield daemon
    daemon.client.close()
    daemon.daemon.shutdown()


def get(running: RunningDaemon, path: str, **params: Any) -> httpx.Response:
    return running.client.get(path, params=params)


def nasctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasctl.cli", *args],
        env={"NASCTL_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- REST -------------------------------------------------------------------------------------------


def test_pareto_lists_the_front_with_each_trials_objective_values(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    body = get(running, f"/experiments/{experiments['multi']}/pareto").json()
    assert [(t["id"], t["values"]) for t in body["front"]] == [
        ("t0000", {"accuracy": 0.9, "latency_ms": 20.0}),
        ("t0001", {"accuracy": 0.8, "latency_ms": 5.0}),
    ]


def test_pareto_names_the_objectives_and_constraints(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    body = get(running, f"/experiments/{experiments['multi']}/pareto").json()
    assert body["objectives"] == [
        {"metric": "accuracy", "mode": "maximize"},
        {"metric": "latency_ms", "mode": "minimize"},
    ]
    assert body["constraints"] == ["latency_ms <= 50"]


def test_pareto_counts_the_dominated_and_the_infeasible_trials(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    body = get(running, f"/experiments/{experiments['multi']}/pareto").json()
    assert (body["dominated"], body["infeasible"]) == (1, 1)


def test_pareto_front_entries_are_trials_with_rank_and_feasibility(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    first = get(running, f"/experiments/{experiments['multi']}/pareto").json()["front"][0]
    assert first["status"] == "SUCCEEDED" and first["parameters"] == {"width": 8}
    assert (first["rank"], first["feasible"]) == (1, True)


def test_pareto_points_rank_every_ranked_trial_for_the_scatter(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    points = get(running, f"/experiments/{experiments['multi']}/pareto").json()["points"]
    assert [(p["id"], p["rank"], p["feasible"]) for p in points] == [
        ("t0000", 1, True),
        ("t0001", 1, True),
        ("t0002", 2, True),
        ("t0003", 3, False),
    ]


def test_pareto_of_an_unknown_experiment_is_a_404(running: RunningDaemon) -> None:
    response = get(running, "/experiments/nope/pareto")
    assert response.status_code == 404 and response.json()["detail"] == "experiment 'nope' not found"


def test_pareto_of_a_single_objective_experiment_is_a_409_saying_so(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    response = get(running, f"/experiments/{experiments['single']}/pareto")
    assert response.status_code == 409
    assert "has one objective" in response.json()["detail"]


def test_the_openapi_document_lists_pareto_and_its_409(running: RunningDaemon) -> None:
    root = running.base_url.removesuffix("/api/v1")
    paths = httpx.get(f"{root}/openapi.json", trust_env=False).json()["paths"]
    assert "409" in paths["/api/v1/experiments/{experiment_id}/pareto"]["get"]["responses"]


# -- export -----------------------------------------------------------------------------------------


def test_export_json_marks_each_trial_pareto_and_its_rank(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    rows = get(running, f"/experiments/{experiments['multi']}/export").json()
    assert [(r["id"], r["pareto"], r["paretoRank"]) for r in rows] == [
        ("t0000", True, 1),
        ("t0001", True, 1),
        ("t0002", False, 2),
        ("t0003", False, 3),
        ("t0004", False, None),
        ("t0005", False, None),
    ]


def test_export_csv_has_pareto_and_rank_columns(running: RunningDaemon, experiments: dict[str, str]) -> None:
    text = get(running, f"/experiments/{experiments['multi']}/export", format="csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["pareto"], r["paretoRank"]) for r in rows] == [
        ("true", "1"),
        ("true", "1"),
        ("false", "2"),
        ("false", "3"),
        ("false", ""),
        ("false", ""),
    ]


def test_export_of_a_single_objective_experiment_has_no_pareto_fields(
    running: RunningDaemon, experiments: dict[str, str]
) -> None:
    rows = get(running, f"/experiments/{experiments['single']}/export").json()
    header = get(running, f"/experiments/{experiments['single']}/export", format="csv").text.splitlines()[0]
    assert "pareto" not in rows[0] and "pareto" not in header


# -- CLI --------------------------------------------------------------------------------------------


def test_trial_ls_pareto_lists_only_the_front_with_a_column_per_objective(
    home: Path, running: RunningDaemon, experiments: dict[str, str]
) -> None:
    proc = nasctl(home, "trial", "ls", "--pareto", experiments["multi"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["TRIAL", "ACCURACY", "LATENCY_MS", "width"]
    assert [line.split()[0] for line in lines[1:3]] == ["t0000", "t0001"]
    assert lines[3] == "2 on the front, 1 dominated, 1 infeasible"


def test_trial_ls_pareto_json_is_the_front(
    home: Path, running: RunningDaemon, experiments: dict[str, str]
) -> None:
    proc = nasctl(home, "trial", "ls", "--pareto", experiments["multi"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert [t["id"] for t in json.loads(proc.stdout)] == ["t0000", "t0001"]


def test_trial_ls_pareto_of_a_single_objective_experiment_fails_saying_so(
    home: Path, running: RunningDaemon, experiments: dict[str, str]
) -> None:
    proc = nasctl(home, "trial", "ls", "--pareto", experiments["single"])
    assert proc.returncode != 0 and "has one objective" in proc.stderr


def test_trial_ls_pareto_does_not_combine_with_top(home: Path, running: RunningDaemon) -> None:
    proc = nasctl(home, "trial", "ls", "--pareto", "--top", "3")
    assert proc.returncode != 0 and "--pareto" in proc.stderr


def test_pareto_table_shows_counts_without_decimals_and_accuracies_with_four() -> None:
    from nasctl.output import pareto_table

    front = [
        {"id": "a", "values": {"accuracy": 0.9, "params": 1546.0}, "parameters": {}, "duration": 1.0},
        {"id": "b", "values": {"accuracy": 1.0, "params": 3882.0}, "parameters": {}, "duration": 1.0},
    ]
    objectives = [{"metric": "accuracy", "mode": "maximize"}, {"metric": "params", "mode": "minimize"}]
    table = pareto_table({"objectives": objectives, "front": front})
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [row[1:3] for row in rows] == [["1.0000", "3882"], ["0.9000", "1546"]]


def test_pareto_table_lists_the_front_along_it_best_first_objective_first() -> None:
    from nasctl.output import pareto_table

    accuracies = {"a": (0.90, 10.0), "b": (0.97, 30.0), "c": (0.80, 5.0), "d": (0.95, 20.0)}
    front = [
        {"id": i, "values": {"accuracy": acc, "latency": lat}, "parameters": {}, "duration": 1.0}
        for i, (acc, lat) in accuracies.items()
    ]
    objectives = [{"metric": "accuracy", "mode": "maximize"}, {"metric": "latency", "mode": "minimize"}]
    table = pareto_table({"objectives": objectives, "front": front})
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["b", "d", "a", "c"]
