"""The dashboard's JSON views (final metrics, which ops matter, the NAS view) and search-log reading.

Experiments are real (``fast_trial.py`` on the 6-architecture space, so the random tuner runs
each architecture once); expected numbers are recomputed here from the REST trial list.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    RunningDaemon,
    ctrl_c_acts,
    fast_trial_config,
    wait_until,
)
from dashboard_data import darts_space, write_search_log

from manager.http.viewnas import ViewNasServer
from manager.views.searchlog import SearchLog, SearchLogError, normalize_graph, pick_evenly

REPO = Path(__file__).resolve().parents[1]


def config_for(args: str = "", **overrides: Any) -> dict[str, Any]:
    return fast_trial_config("views", args, **overrides)


@pytest.fixture(scope="module")
def finished(served: RunningDaemon) -> dict[str, Any]:
    exp = served.create(config_for())
    return served.wait_for_status(exp["id"], "DONE")


def get(served: RunningDaemon, path: str, **params: Any) -> Any:
    response = served.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def chosen_name(decision: Any) -> str:
    value = decision["_value"]
    return value[0] if isinstance(value, list) else value


# -- final metrics ------------------------------------------------------------------------------


def test_final_metrics_list_every_trial_with_its_result(served: RunningDaemon, finished: dict) -> None:
    data = get(served, f"/experiments/{finished['id']}/final-metrics")
    trials = {t["id"]: t for t in served.trials(finished["id"])}
    assert sorted(data["trialIds"]) == sorted(trials)
    for seq, tid, value in zip(data["sequenceIds"], data["trialIds"], data["values"], strict=True):
        assert (seq, value) == (trials[tid]["sequenceId"], trials[tid]["finalMetric"])


def test_final_metrics_after_the_cursor_are_only_the_new_ones(served: RunningDaemon, finished: dict) -> None:
    first = get(served, f"/experiments/{finished['id']}/final-metrics")
    newest = get(served, f"/experiments/{finished['id']}/metrics", limit=10000)["next"]
    assert first["next"] == newest
    again = get(served, f"/experiments/{finished['id']}/final-metrics", since=first["next"])
    assert again["trialIds"] == [] and again["next"] == first["next"]


def test_polling_final_metrics_of_a_live_experiment_sees_each_result_once(served: RunningDaemon) -> None:
    exp = served.create(config_for("--sleep 0.3", trialConcurrency=1, maxTrialNumber=3))
    seen: list[str] = []
    cursor = 0

    def poll() -> bool:
        nonlocal cursor
        data = get(served, f"/experiments/{exp['id']}/final-metrics", since=cursor)
        seen.extend(data["trialIds"])
        cursor = data["next"]
        return served.experiment(exp["id"])["status"] == "DONE" and len(seen) >= 3

    wait_until(poll, 60, "every final result seen")
    assert sorted(seen) == sorted(t["id"] for t in served.trials(exp["id"]))


# -- which ops matter ------------------------------------------------------------------------------


def test_choice_stats_count_each_candidate_among_all_trials_and_the_top_k(
    served: RunningDaemon, finished: dict
) -> None:
    stats = get(served, f"/experiments/{finished['id']}/choice-stats", top=2)
    best_two = served.client.get(f"/experiments/{finished['id']}/best", params={"k": 2}).json()
    conv = next(k for k in stats["keys"] if k["key"] == "conv")
    assert conv["candidates"] == ["conv3x3", "conv5x5", "maxpool"]
    assert conv["all"] == [2, 2, 2]  # six architectures, each once
    expected_top = [
        sum(chosen_name(t["parameters"]["conv"]) == c for t in best_two) for c in conv["candidates"]
    ]
    assert conv["top"] == expected_top and stats["topK"] == 2


def test_choice_stats_give_the_mean_metric_of_the_trials_that_chose_each_candidate(
    served: RunningDaemon, finished: dict
) -> None:
    stats = get(served, f"/experiments/{finished['id']}/choice-stats")
    trials = served.trials(finished["id"])
    skip = next(k for k in stats["keys"] if k["key"] == "skip")
    for i, name in enumerate(skip["candidates"]):
        values = [t["finalMetric"] for t in trials if chosen_name(t["parameters"]["skip"]) == name]
        assert skip["mean"][i] == pytest.approx(sum(values) / len(values))
        assert skip["best"][i] == pytest.approx(max(values))


# -- the NAS view of an experiment ----------------------------------------------------------------


def test_the_nas_view_of_an_experiment_has_the_search_log_shape(
    served: RunningDaemon, finished: dict
) -> None:
    view = get(served, f"/experiments/{finished['id']}/nas-view", points=3)
    assert view["graph"]["derived"] is True
    choices = {n["key"]: n["candidates"] for n in view["graph"]["nodes"] if "key" in n}
    assert choices == {"conv": ["conv3x3", "conv5x5", "maxpool"], "skip": ["in0", "in1"]}
    steps = view["weights"]["items"]
    assert [s["step"] for s in steps] == [1, 3, 6] and view["weights"]["total"] == 6
    for step in steps:  # each weight is a share of the trials in the window
        assert sum(step["weights"]["conv"]) == pytest.approx(1.0, abs=1e-5)
    best = served.client.get(f"/experiments/{finished['id']}/best").json()[0]
    assert (
        view["architectureTrial"] == best["id"] and view["architecture"]["conv"] == best["parameters"]["conv"]
    )


@pytest.mark.parametrize(
    ("path", "param", "value"),
    [
        ("choice-stats", "top", "0"),
        ("nas-view", "points", "1"),
        ("final-metrics", "since", "-1"),
        ("nas-view", "points", "x"),
    ],
)
def test_dashboard_views_refuse_a_bad_query_value_naming_it(
    served: RunningDaemon, finished: dict, path: str, param: str, value: str
) -> None:
    response = served.client.get(f"/experiments/{finished['id']}/{path}", params={param: value})
    assert response.status_code == 400 and response.json()["detail"].startswith(f"{param}: must be")


@pytest.mark.parametrize("path", ["final-metrics", "choice-stats", "nas-view"])
def test_dashboard_views_of_an_unknown_experiment_are_404(served: RunningDaemon, path: str) -> None:
    assert served.client.get(f"/experiments/nope/{path}").status_code == 404


# -- reading a search log -----------------------------------------------------------------------------


def test_a_search_log_is_read_with_at_most_the_points_asked_first_and_last_kept(tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "log", steps=50)
    view = SearchLog(folder).view(points=10)
    steps = [item["step"] for item in view["weights"]["items"]]
    assert view["weights"]["total"] == 50 and len(steps) == 10
    assert steps[0] == 0 and steps[-1] == 49 * 50
    assert view["finished"] and set(view["architecture"]) == set(darts_space())


def test_a_half_written_last_line_is_read_once_complete(tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "log", steps=3, finished=False)
    log = SearchLog(folder)
    line = json.dumps({"step": 999, "epoch": 9, "weights": {"normal_n2_p0": [1.0] + [0.0] * 6}})
    with open(folder / "weights.jsonl", "a") as weights:
        weights.write(line[:20])
        weights.flush()
        assert log.view()["weights"]["total"] == 3 and log.view()["problems"] == []
        weights.write(line[20:] + "\n")
    assert log.view()["weights"]["items"][-1]["step"] == 999


def test_a_log_without_graph_json_gets_a_graph_drawn_from_its_search_space(tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "log", steps=2, graph=False)
    graph = SearchLog(folder).view()["graph"]
    keys = {n["key"] for n in graph["nodes"] if "key" in n}
    assert graph["derived"] and keys == set(darts_space())


def test_a_graph_written_by_another_tool_is_read_leniently() -> None:
    raw = {
        "nodes": [
            {"name": "x", "kind": "input"},
            {"name": "op", "kind": "layer_choice"},
            {"name": "pick", "kind": "input_choice", "candidates": ["x", "elsewhere"]},
            {"name": "odd", "kind": "teapot"},
        ],
        "edges": [["x", "op"], {"from": "op", "to": "pick"}, ["op", "nowhere"]],
    }
    space = {"op": {"_type": "layer_choice", "_value": ["a", "b"]}}
    graph = normalize_graph(raw, space)
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["op"]["candidates"] == ["a", "b"] and nodes["odd"]["type"] == "module"
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert {("x", "op"), ("op", "pick"), ("x", "pick"), ("in:elsewhere", "pick")} <= edges
    assert all("nowhere" not in e for e in edges)


def test_a_key_placed_in_two_cells_keeps_the_exact_wiring_its_edges_name() -> None:
    choice = {"type": "layer_choice", "key": "op", "candidates": ["a", "b"]}
    switch = {"type": "input_choice", "key": "pick", "candidates": ["op", "x"], "n_chosen": 1}
    raw = {
        "nodes": [
            {"id": "x", "type": "input"},
            *({"id": f"c{i}", "type": "scope"} for i in (0, 1)),
            *({"id": f"c{i}.op", "parent": f"c{i}", **choice} for i in (0, 1)),
            *({"id": f"c{i}.pick", "parent": f"c{i}", **switch} for i in (0, 1)),
        ],
        "edges": [
            *({"source": "x", "target": f"c{i}.op"} for i in (0, 1)),
            *({"source": f"c{i}.op", "target": f"c{i}.pick", "candidate": 0} for i in (0, 1)),
            *({"source": "x", "target": f"c{i}.pick", "candidate": 1} for i in (0, 1)),
        ],
    }
    graph = normalize_graph(raw, None)
    into = {
        (e["source"], e["target"], e.get("candidate")) for e in graph["edges"] if e["target"].endswith("pick")
    }
    assert into == {
        ("c0.op", "c0.pick", 0),
        ("x", "c0.pick", 1),
        ("c1.op", "c1.pick", 0),
        ("x", "c1.pick", 1),
    }


def test_a_graph_with_no_edges_is_replaced_by_one_drawn_from_the_space(tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "log", steps=2)
    untraced = {
        "version": 1,
        "traced": False,
        "nodes": json.loads((folder / "graph.json").read_text())["nodes"],
    }
    (folder / "graph.json").write_text(json.dumps({**untraced, "edges": []}))
    view = SearchLog(folder).view()
    assert view["graph"]["derived"] and "no edges" in view["problems"][0]


def test_a_folder_that_is_not_a_search_log_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SearchLogError, match="not a search log"):
        SearchLog(tmp_path)
    with pytest.raises(SearchLogError, match="no such folder"):
        SearchLog(tmp_path / "missing")


def test_picking_evenly_keeps_the_ends_and_never_exceeds_the_points() -> None:
    picked = pick_evenly(list(range(1000)), 7)
    gaps = {b - a for a, b in itertools.pairwise(picked)}
    assert len(picked) == 7 and picked[0] == 0 and picked[-1] == 999 and max(gaps) - min(gaps) <= 1
    assert pick_evenly([1, 2], 5) == [1, 2]


# -- nasctl view-nas ---------------------------------------------------------------------------------


def test_the_view_nas_server_serves_the_log_only_with_its_token(tmp_path: Path) -> None:
    server = ViewNasServer.for_folder(write_search_log(tmp_path / "log", steps=5)).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            assert client.get("/api/v1/searchlog").status_code == 401
            assert client.get("/", params={"token": server.token}).status_code == 303
            view = client.get("/api/v1/searchlog").json()  # now with the cookie
            assert view["source"] == "searchlog" and view["weights"]["total"] == 5
            page = client.get("/")
            assert '<meta name="nasctl-mode" content="searchlog">' in page.text
    finally:
        server.stop()


def nasctl(*args: str, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nasctl.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_acts,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [((), "give --logdir DIR"), (("--logdir", "/nonexistent/log"), "no such folder")],
)
def test_view_nas_refuses_bad_input_with_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = nasctl("view-nas", *args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_view_nas_of_an_experiment_prints_the_daemon_link_to_its_super_net_view(
    served: RunningDaemon, finished: dict
) -> None:
    proc = nasctl("--home", str(served.home), "view-nas", "--experiment", finished["id"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (
        out.strip()
        == f"{served.base_url.removesuffix('/api/v1')}/?token={served.token}#/experiments/{finished['id']}/supernet"
    )


def test_view_nas_prints_a_link_that_works_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    folder = write_search_log(tmp_path / "log", steps=4)
    proc = nasctl("view-nas", "--logdir", str(folder), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline()
        link = proc.stdout.readline().strip()
        assert "4 steps logged, finished" in header and link.endswith("#/nas")
        with httpx.Client(trust_env=False) as client:
            assert client.get(link.split("#")[0]).status_code == 303
            assert client.get(link.split("/?")[0] + "/api/v1/searchlog").json()["weights"]["total"] == 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
