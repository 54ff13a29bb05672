"""The REST contract of docs/rest.md, checked over real HTTP against a real daemon."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    SMALL_SPACE,
    TRIALS_DIR,
    RunningDaemon,
    fast_trial_config,
    wait_until,
)
from dashboard_data import write_search_log

from manager.http.viewnas import ViewNasServer

Config = Callable[..., dict[str, Any]]

EXPERIMENT_KEYS = {
    "id", "name", "status", "createdAt", "startTime", "endTime", "trialConcurrency", "maxTrialNumber",
    "maxExperimentDuration", "optimizeMode", "tuner", "trialCounts", "trialsStarted", "bestTrialId",
    "bestMetric", "error", "failureReasons", "otherFailures", "experimentDir", "config",
}  # fmt: skip
TRIAL_KEYS = {
    "id", "experimentId", "sequenceId", "status", "parameterId", "parameters", "startTime", "endTime",
    "duration", "exitCode", "signal", "reason", "stopStep", "waitingReason", "finalMetric", "finalMetricData", "gpus",
    "trialDir", "launch",
}  # fmt: skip
METRIC_KEYS = {"id", "trialId", "type", "sequence", "value", "defaultValue", "time"}
TRIAL_STATUSES = {
    "WAITING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "USER_CANCELED",
    "SYS_CANCELED",
    "EARLY_STOPPED",
}


def config_for(args: str = "", **overrides: Any) -> dict[str, Any]:
    return fast_trial_config("api", args, **overrides)


@pytest.fixture(scope="module")
def finished(served: RunningDaemon) -> dict[str, Any]:
    exp = served.create(config_for())
    return served.wait_for_status(exp["id"], "DONE")


@pytest.fixture(scope="module")
def anonymous(served: RunningDaemon) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, trust_env=False) as client:
        yield client


# -- authentication --------------------------------------------------------------------------

ROUTES = [
    ("GET", "/experiments"),
    ("POST", "/experiments"),
    ("GET", "/experiments/x"),
    ("PATCH", "/experiments/x"),
    ("POST", "/experiments/x/stop"),
    ("POST", "/experiments/x/resume"),
    ("DELETE", "/experiments/x"),
    ("GET", "/experiments/x/search-space"),
    ("GET", "/experiments/x/trials"),
    ("GET", "/experiments/x/trials/t"),
    ("DELETE", "/experiments/x/trials/t"),
    ("GET", "/experiments/x/trials/t/log/stdout"),
    ("GET", "/experiments/x/metrics"),
    ("GET", "/experiments/x/best"),
    ("GET", "/experiments/x/export"),
    ("GET", "/experiments/x/pareto"),
]


def test_health_needs_no_token(anonymous: httpx.Client) -> None:
    response = anonymous.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] and isinstance(body["pid"], int)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_other_route_needs_the_token(anonymous: httpx.Client, method: str, path: str) -> None:
    missing = anonymous.request(method, path)
    wrong = anonymous.request(method, path, headers={"Authorization": "Bearer not-the-token"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "token" in missing.json()["detail"] and wrong.json()["detail"] == "invalid token"


def test_the_token_is_not_accepted_in_another_scheme(served: RunningDaemon, anonymous: httpx.Client) -> None:
    response = anonymous.get("/experiments", headers={"Authorization": f"Basic {served.token}"})
    assert response.status_code == 401


# -- unknown ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1].startswith("/experiments/x")])
def test_an_unknown_experiment_is_a_404(served: RunningDaemon, method: str, path: str) -> None:
    response = served.client.request(method, path, json={} if method == "PATCH" else None)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "experiment 'x' not found",
    }


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("DELETE", ""), ("GET", "/log/stdout"), ("GET", "/log/stderr")]
)
def test_an_unknown_trial_is_a_404(
    served: RunningDaemon, finished: dict[str, Any], method: str, suffix: str
) -> None:
    response = served.client.request(method, f"/experiments/{finished['id']}/trials/nope{suffix}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"trial 'nope' not found in experiment {finished['id']}"


def test_an_unknown_route_is_a_404_with_detail(served: RunningDaemon) -> None:
    response = served.client.get("/no-such-route")
    assert response.status_code == 404 and "detail" in response.json()


# -- experiments -----------------------------------------------------------------------------------


def test_create_answers_201_with_the_documented_experiment(served: RunningDaemon) -> None:
    response = served.client.post(
        "/experiments", json={"config": config_for(maxTrialNumber=1), "baseDir": "/"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == EXPERIMENT_KEYS
    assert body["status"] in ("INITIALIZED", "RUNNING", "NO_MORE_TRIAL", "DONE")
    assert set(body["trialCounts"]) == TRIAL_STATUSES
    assert (body["tuner"], body["optimizeMode"], body["name"]) == ("Random", "maximize", "api")
    assert body["config"]["trialCommand"] == config_for()["trialCommand"]
    served.wait_for_status(body["id"], "DONE")


def test_relative_paths_resolve_against_base_dir(served: RunningDaemon) -> None:
    config = config_for(maxTrialNumber=1, trialCodeDirectory=".")
    exp = served.create(config, base_dir=TRIALS_DIR)
    assert exp["config"]["trialCodeDirectory"] == str(TRIALS_DIR)
    assert served.wait_for_status(exp["id"])["trialCounts"]["SUCCEEDED"] == 1


def test_a_finished_experiment_reports_counts_and_best(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    assert finished["trialCounts"]["SUCCEEDED"] == 6 and finished["trialsStarted"] == 6
    best = max(served.trials(finished["id"]), key=lambda t: t["finalMetric"])
    assert finished["bestMetric"] == best["finalMetric"]
    assert served.trial(finished["id"], finished["bestTrialId"])["finalMetric"] == best["finalMetric"]


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"trialCommand": "x", "trialConcurency": 2}, "config: unknown key 'trialConcurency' (did you mean 'trialConcurrency'?)"),
        ({"trialCommand": "x", "trialConcurrency": -2}, "config: trialConcurrency: must be a whole number >= 1, got -2"),
        ({"trialCommand": "x", "tuner": {"name": "Randm"}}, "config: tuner.name: unknown tuner 'Randm' (did you mean 'Random'?)"),
        ({"trialCommand": "x", "searchSpace": {"a": {"_type": "layer_choice", "_value": []}}}, "_value"),
        ({"trialCommand": "x", "maxTrialNumber": 10**30}, "config: maxTrialNumber: must be at most 2147483647"),
    ],
)  # fmt: skip
def test_an_invalid_config_is_a_400_and_creates_nothing(
    served: RunningDaemon, config: dict[str, Any], detail: str
) -> None:
    before = len(served.client.get("/experiments").json())
    response = served.client.post("/experiments", json={"config": config, "baseDir": str(TRIALS_DIR)})
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert len(served.client.get("/experiments").json()) == before


def test_an_unreadable_search_space_file_is_a_400(served: RunningDaemon, tmp_path: Path) -> None:
    space = tmp_path / "space.json"
    space.write_text("{not json")
    config = config_for()
    del config["searchSpace"]
    config["searchSpaceFile"] = str(space)
    response = served.client.post("/experiments", json={"config": config, "baseDir": "/"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]


def test_a_gpu_request_on_a_machine_without_gpus_is_a_400(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    daemon = daemon_factory(gpu_inventory=lambda: [])
    response = daemon.client.post(
        "/experiments", json={"config": config_for(trialGpuNumber=1), "baseDir": "/"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("trialGpuNumber: trialGpuNumber is 1 but no GPU was found")
    assert daemon.client.get("/experiments").json() == []


def test_a_tuner_that_cannot_be_imported_is_a_400(served: RunningDaemon, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    tuner = {"codeDirectory": str(tmp_path), "classFileName": "broken.py", "className": "Tuner"}
    response = served.client.post("/experiments", json={"config": config_for(tuner=tuner), "baseDir": "/"})
    assert response.status_code == 400
    assert "no_such_module_anywhere" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: must be a JSON object"),
        (b'{"baseDir": "/"}', 400, "body: missing 'config'"),
        (b"[" * 100_000, 400, "body: "),
        (b'{"config": {}, "baseDir": "/", "extra": 1}', 400, "body: unknown field 'extra'"),
        (
            b'{"config": {"trialCommand": "x"}, "baseDir": "relative/dir"}',
            400,
            "baseDir: must be an absolute path",
        ),
    ],
)
def test_a_malformed_create_body_is_refused_with_one_line(
    served: RunningDaemon, body: bytes, status: int, detail: str
) -> None:
    response = served.client.post("/experiments", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


def test_a_refused_value_is_a_problem_naming_its_field(served: RunningDaemon) -> None:
    response = served.client.get("/experiments", params={"status": "DONNE"})
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"], problem["field"]) == (
        "about:blank",
        "Bad Request",
        400,
        "status",
    )


@pytest.mark.parametrize("value", [" 5", "+5", "1_0", "\u0665"])
def test_a_whole_number_query_takes_ascii_digits_only(served: RunningDaemon, value: str) -> None:
    response = served.client.get("/experiments/x/trials", params={"limit": value})
    assert response.status_code in (400, 404)
    response = served.client.get("/experiments", params={"status": value})
    assert response.status_code == 400


def test_options_lists_every_method_of_the_resource(served: RunningDaemon, finished: dict[str, Any]) -> None:
    response = served.client.options(f"/experiments/{finished['id']}")
    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"


def test_a_method_the_resource_does_not_take_is_a_405_with_its_allow(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    response = served.client.put(f"/experiments/{finished['id']}/trials")
    assert response.status_code == 405 and response.headers["allow"] == "GET, OPTIONS"
    assert response.json()["detail"] == "PUT is not allowed here; allowed: GET, OPTIONS"


def test_the_view_nas_server_answers_errors_as_problems_too(tmp_path: Path) -> None:
    server = ViewNasServer.for_folder(write_search_log(tmp_path / "log", steps=2)).start()
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            response = client.post("/api/v1/searchlog")
    finally:
        server.stop()
    assert response.status_code == 405 and response.headers["allow"] == "GET, OPTIONS"
    assert response.headers["content-type"] == "application/problem+json"


def test_the_document_lists_each_error_of_an_operation_as_a_problem(served: RunningDaemon) -> None:
    document = served.client.get(served.client.base_url.join("/openapi.json")).json()
    responses = document["paths"]["/api/v1/experiments/{experiment_id}/stop"]["post"]["responses"]
    assert sorted(responses) == ["200", "401", "403", "404", "409", "421", "507"]
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    assert responses["404"]["content"] == {"application/problem+json": problem}
    listed = document["paths"]["/api/v1/experiments"]["get"]["responses"]
    assert sorted(listed) == ["200", "400", "401", "421"]


def test_a_patch_takes_a_duration_as_the_document_writes_it(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    response = served.client.patch(f"/experiments/{finished['id']}", json={"maxExperimentDuration": " 30m"})
    assert response.status_code == 400 and response.json()["field"] == "maxExperimentDuration"


def test_list_is_newest_first_and_filters_by_status(served: RunningDaemon, finished: dict[str, Any]) -> None:
    listed = served.client.get("/experiments").json()
    assert [e["createdAt"] for e in listed] == sorted((e["createdAt"] for e in listed), reverse=True)
    done = served.client.get("/experiments", params={"status": "DONE"}).json()
    assert finished["id"] in {e["id"] for e in done} and {e["status"] for e in done} == {"DONE"}
    assert served.client.get("/experiments", params={"status": ""}).status_code == 200


def test_an_unknown_status_filter_is_a_400(served: RunningDaemon) -> None:
    response = served.client.get("/experiments", params={"status": "DONNE"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("status: unknown value 'DONNE' (did you mean 'DONE'?)")


def test_the_search_space_is_served_as_json(served: RunningDaemon, finished: dict[str, Any]) -> None:
    assert served.client.get(f"/experiments/{finished['id']}/search-space").json() == SMALL_SPACE


# -- PATCH -----------------------------------------------------------------------------------------


def test_patch_changes_the_limits_and_shows_them_in_the_config(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    exp = served.create(config_for(maxTrialNumber=1))
    served.wait_for_status(exp["id"], "DONE")
    response = served.client.patch(
        f"/experiments/{exp['id']}", json={"trialConcurrency": 4, "maxExperimentDuration": "2h"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["trialConcurrency"], body["maxExperimentDuration"]) == (4, 7200.0)
    assert (body["config"]["trialConcurrency"], body["config"]["maxExperimentDuration"]) == (4, 7200.0)
    assert body["status"] == "DONE"  # maxTrialNumber still holds it


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "body: nothing to change; give any of trialConcurrency, maxTrialNumber, maxExperimentDuration"),
        ({"maxTrialNum": 5}, "unknown field 'maxTrialNum' (did you mean 'maxTrialNumber'?)"),
        ({"trialConcurrency": 0}, "trialConcurrency: must be a whole number from 1 to 2147483647, got 0"),
        ({"trialConcurrency": 1.5}, "trialConcurrency: must be a whole number from 1 to 2147483647, got 1.5"),
        ({"trialConcurrency": 10**30}, "trialConcurrency: must be a whole number from 1 to 2147483647"),
        ({"maxTrialNumber": "ten"}, "maxTrialNumber: must be a whole number from 1 to 2147483647 or null"),
        ({"maxExperimentDuration": -1}, "maxExperimentDuration: must be seconds > 0"),
    ],
)
def test_patch_refuses_bad_values_naming_the_field(
    served: RunningDaemon, finished: dict[str, Any], body: dict[str, Any], detail: str
) -> None:
    response = served.client.patch(f"/experiments/{finished['id']}", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert served.experiment(finished["id"])["maxTrialNumber"] == 6


def test_patch_with_null_removes_a_limit(daemon: RunningDaemon) -> None:
    exp = daemon.create(config_for("--sleep 30", maxTrialNumber=1, trialConcurrency=1))
    body = daemon.client.patch(f"/experiments/{exp['id']}", json={"maxTrialNumber": None}).json()
    assert body["maxTrialNumber"] is None
    daemon.client.post(f"/experiments/{exp['id']}/stop")


# -- stop, resume, delete ------------------------------------------------------------------------------


def test_resuming_a_running_experiment_is_a_409(daemon: RunningDaemon) -> None:
    exp = daemon.create(config_for("--sleep 30", trialConcurrency=1))
    response = daemon.client.post(f"/experiments/{exp['id']}/resume")
    assert response.status_code == 409
    assert "only STOPPED, DONE, ERROR ones can be resumed" in response.json()["detail"]
    daemon.client.post(f"/experiments/{exp['id']}/stop")


def test_stopping_a_finished_experiment_is_a_409(served: RunningDaemon, finished: dict[str, Any]) -> None:
    response = served.client.post(f"/experiments/{finished['id']}/stop")
    assert response.status_code == 409
    assert (
        response.json()["detail"] == f"experiment {finished['id']} is DONE; only an active one can be stopped"
    )


def test_delete_stops_the_experiment_and_removes_its_rows_and_folder(daemon: RunningDaemon) -> None:
    exp = daemon.create(config_for("--sleep 30", trialConcurrency=2))
    wait_until(lambda: len(daemon.trials(exp["id"], status="RUNNING")) == 2, what="two running trials")
    folder = Path(exp["experimentDir"])
    assert folder.is_dir()
    response = daemon.client.delete(f"/experiments/{exp['id']}")
    assert response.status_code == 204 and response.content == b""
    assert daemon.client.get(f"/experiments/{exp['id']}").status_code == 404
    assert not folder.exists()
    assert daemon.daemon.store.all_trials(exp["id"]) == []


# -- trials ------------------------------------------------------------------------------------------


def test_a_trial_has_the_documented_fields_and_its_intermediate_metrics(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    trial = served.trials(finished["id"])[0]
    assert set(trial) == TRIAL_KEYS
    detail = served.trial(finished["id"], trial["id"])
    assert set(detail) == TRIAL_KEYS | {"intermediate"}
    assert [m["sequence"] for m in detail["intermediate"]] == [0, 1]
    assert all(set(m) == METRIC_KEYS and m["type"] == "PERIODICAL" for m in detail["intermediate"])
    assert detail["trialDir"] == str(Path(finished["experimentDir"]) / "trials" / trial["id"])


def test_trials_are_sorted_and_paged_on_the_server(served: RunningDaemon, finished: dict[str, Any]) -> None:
    path = f"/experiments/{finished['id']}/trials"
    ranked = served.client.get(path, params={"sort": "finalMetric", "order": "desc"}).json()
    metrics = [t["finalMetric"] for t in ranked["items"]]
    assert ranked["total"] == 6 and metrics == sorted(metrics, reverse=True)
    page = served.client.get(
        path, params={"sort": "finalMetric", "order": "desc", "offset": 2, "limit": 3}
    ).json()
    assert (page["total"], page["offset"]) == (6, 2)
    assert [t["id"] for t in page["items"]] == [t["id"] for t in ranked["items"][2:5]]


def test_trials_default_to_sequence_order_and_empty_parameters_mean_unset(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    params = {"status": "", "sort": "", "order": "", "offset": "", "limit": ""}
    body = served.client.get(f"/experiments/{finished['id']}/trials", params=params).json()
    assert [t["sequenceId"] for t in body["items"]] == list(range(6))


def test_trials_filter_by_status(served: RunningDaemon, finished: dict[str, Any]) -> None:
    path = f"/experiments/{finished['id']}/trials"
    assert served.client.get(path, params={"status": "FAILED"}).json() == {
        "total": 0,
        "offset": 0,
        "items": [],
    }
    assert served.client.get(path, params={"status": "SUCCEEDED"}).json()["total"] == 6


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"sort": "metric"}, "sort: unknown value 'metric'"),
        ({"order": "up"}, "order: unknown value 'up'"),
        ({"limit": "0"}, "limit: must be a whole number from 1 to 1000, got 0"),
        ({"limit": "1001"}, "limit: must be a whole number from 1 to 1000, got 1001"),
        ({"offset": "-1"}, "offset: must be a whole number >= 0, got -1"),
        ({"offset": "two"}, "offset: must be a whole number >= 0, got 'two'"),
        ({"status": "OK"}, "status: unknown value 'OK'"),
    ],
)
def test_bad_trial_query_parameters_are_a_400(
    served: RunningDaemon, finished: dict[str, Any], params: dict[str, str], detail: str
) -> None:
    response = served.client.get(f"/experiments/{finished['id']}/trials", params=params)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_killing_a_running_trial_cancels_it(daemon: RunningDaemon) -> None:
    exp = daemon.create(config_for("--sleep 30", trialConcurrency=1, maxTrialNumber=1))
    (trial,) = wait_until(lambda: daemon.trials(exp["id"], status="RUNNING"), what="a running trial")
    response = daemon.client.delete(f"/experiments/{exp['id']}/trials/{trial['id']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reason"]) == ("USER_CANCELED", "canceled by user")
    assert daemon.wait_for_status(exp["id"], "DONE")["trialCounts"]["USER_CANCELED"] == 1


def test_killing_a_finished_trial_is_a_409(served: RunningDaemon, finished: dict[str, Any]) -> None:
    trial = served.trials(finished["id"])[0]
    response = served.client.delete(f"/experiments/{finished['id']}/trials/{trial['id']}")
    assert response.status_code == 409
    assert (
        response.json()["detail"]
        == f"trial {trial['id']} is SUCCEEDED; only a WAITING or RUNNING trial can be killed"
    )


def test_a_trial_log_is_served_as_text_whole_or_tail(served: RunningDaemon, finished: dict[str, Any]) -> None:
    trial = served.trials(finished["id"])[0]
    path = f"/experiments/{finished['id']}/trials/{trial['id']}/log"
    stdout = served.client.get(f"{path}/stdout")
    assert stdout.status_code == 200 and stdout.headers["content-type"].startswith("text/plain")
    assert stdout.text.startswith("fast_trial: ")
    assert (
        served.client.get(f"{path}/stdout", params={"tail": 1}).text
        == stdout.text.splitlines(keepends=True)[-1]
    )
    assert served.client.get(f"{path}/stdout", params={"tail": 0}).text == ""
    assert served.client.get(f"{path}/stderr").status_code == 200


def test_an_unknown_log_stream_is_a_404_and_a_bad_tail_a_400(
    served: RunningDaemon, finished: dict[str, Any]
) -> None:
    trial = served.trials(finished["id"])[0]
    path = f"/experiments/{finished['id']}/trials/{trial['id']}/log"
    assert served.client.get(f"{path}/trial.log").status_code == 404
    bad = served.client.get(f"{path}/stdout", params={"tail": "-3"})
    assert bad.status_code == 400 and bad.json()["detail"] == "tail: must be a whole number >= 0, got -3"


# -- metrics, best, export ------------------------------------------------------------------------------


def test_metrics_are_polled_incrementally(served: RunningDaemon, finished: dict[str, Any]) -> None:
    path = f"/experiments/{finished['id']}/metrics"
    first = served.client.get(path, params={"since": 0, "limit": 5}).json()
    rest = served.client.get(path, params={"since": first["next"]}).json()
    ids = [m["id"] for m in first["items"] + rest["items"]]
    assert len(first["items"]) == 5 and first["next"] == first["items"][-1]["id"]
    assert len(ids) == 18 and ids == sorted(set(ids))
    empty = served.client.get(path, params={"since": rest["next"]}).json()
    assert empty == {"items": [], "next": rest["next"]}


def test_best_returns_the_k_best_succeeded_trials(served: RunningDaemon, finished: dict[str, Any]) -> None:
    best = served.client.get(f"/experiments/{finished['id']}/best", params={"k": 3}).json()
    ranked = sorted(served.trials(finished["id"]), key=lambda t: -t["finalMetric"])
    assert [t["finalMetric"] for t in best] == [t["finalMetric"] for t in ranked[:3]]
    assert served.client.get(f"/experiments/{finished['id']}/best", params={"k": 0}).status_code == 400


def test_export_as_json_lists_every_trial(served: RunningDaemon, finished: dict[str, Any]) -> None:
    rows = served.client.get(f"/experiments/{finished['id']}/export", params={"format": "json"}).json()
    assert len(rows) == 6
    assert {"id", "sequenceId", "status", "parameters", "finalMetric", "startTime", "endTime"} <= set(rows[0])


def test_export_as_csv_has_a_column_per_choice(served: RunningDaemon, finished: dict[str, Any]) -> None:
    response = served.client.get(f"/experiments/{finished['id']}/export", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert {r["conv"] for r in rows} == {"conv3x3", "conv5x5", "maxpool"}
    assert {r["skip"] for r in rows} == {'["in0"]', '["in1"]'}
    assert (
        served.client.get(f"/experiments/{finished['id']}/export", params={"format": "xml"}).status_code
        == 400
    )


# -- transport ------------------------------------------------------------------------------------------


def test_no_cross_origin_access_is_granted(served: RunningDaemon) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    preflight = served.client.options("/experiments", headers=headers)
    plain = served.client.get("/experiments", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in plain.headers


def test_the_openapi_document_lists_every_route(served: RunningDaemon) -> None:
    root = served.base_url.removesuffix("/api/v1")
    paths = httpx.get(f"{root}/openapi.json", trust_env=False).json()["paths"]
    assert "/api/v1/experiments/{experiment_id}/trials/{trial_id}/log/{stream}" in paths
    assert len(paths) == 16  # docs/rest.md: 12 REST routes and 4 dashboard views (with the Pareto front)
