"""nasctl.client.Client against the real daemon, in this process on a free 127.0.0.1 port."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

from nasctl.client import ApiError, Client, ClientError, DaemonInfo, DaemonUnreachable, NoDaemon

REPO = Path(__file__).resolve().parents[1]
SPACE_KEYS = {"op", "act", "skip"}


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "experimentName": "client-test",
        "trialCommand": "python3 cli_trial.py",
        "trialCodeDirectory": "trials",  # relative: resolves against baseDir (tests/)
        "trialConcurrency": 2,
        "maxTrialNumber": 4,
        "tuner": {"name": "Random", "classArgs": {"seed": 3}},
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(home, base url, token) of a daemon running in a thread of this process."""
    from manager.daemon import Daemon

    # Trials say `python3`: make it this interpreter, as `make demo` does.
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old_path])
    home = tmp_path_factory.mktemp("client") / "home"
    daemon = Daemon(home, host="127.0.0.1", port=0, db_url=None)
    port, token = daemon.start_in_thread()
    try:
        yield home, f"http://127.0.0.1:{port}", token
    finally:
        daemon.shutdown()
        os.environ["PATH"] = old_path


@pytest.fixture
def client(served: tuple[Path, str, str]) -> Iterator[Client]:
    _, url, token = served
    with Client(url, token) as c:
        yield c


@pytest.fixture(scope="module")
def finished(served: tuple[Path, str, str]) -> dict[str, Any]:
    """An experiment whose four trials have all ended."""
    _, url, token = served
    with Client(url, token) as c:
        exp = c.create_experiment(config(), REPO / "tests")
        return wait_until(
            lambda: (e := c.get_experiment(exp["id"]))["status"] in ("DONE", "ERROR") and e,
            what="the experiment to finish",
        )


def running_experiment(client: Client) -> dict[str, Any]:
    exp = client.create_experiment(config(trialCommand="python3 cli_trial.py --sleep 60"), REPO / "tests")
    wait_until(
        lambda: client.get_experiment(exp["id"])["trialCounts"]["RUNNING"] >= 1, what="a running trial"
    )
    return exp


# -- connection ----------------------------------------------------------------------------------


def test_health_needs_no_token(served: tuple[Path, str, str]) -> None:
    _, url, _ = served
    with Client(url, None) as anonymous:
        health = anonymous.health()
    assert health["status"] == "ok" and health["pid"] > 0


def test_a_wrong_token_is_refused_with_401(served: tuple[Path, str, str]) -> None:
    _, url, _ = served
    with Client(url, "wrong") as bad, pytest.raises(ApiError) as err:
        bad.list_experiments()
    assert err.value.status == 401 and err.value.detail


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", "t") as nowhere,
        pytest.raises(DaemonUnreachable, match="cannot reach"),
    ):
        nowhere.health()


def test_proxy_settings_never_touch_loopback(
    served: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url, token = served
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Client(url, token) as c:
        assert c.health()["status"] == "ok"


def test_from_home_reads_manager_json(served: tuple[Path, str, str]) -> None:
    home, url, token = served
    info = DaemonInfo.read(home)
    assert info is not None and info.url == url and info.token == token
    with Client.from_home(home) as c:
        assert c.health()["pid"] == info.pid


def test_from_home_without_a_daemon_says_so(tmp_path: Path) -> None:
    with pytest.raises(NoDaemon, match="no daemon runs"):
        Client.from_home(tmp_path)


def test_a_garbled_manager_file_is_a_client_error(tmp_path: Path) -> None:
    (tmp_path / "manager.json").write_text('{"pid": 1}')
    with pytest.raises(ClientError, match="manager.json: missing or bad field"):
        Client.from_home(tmp_path)


# -- experiments ---------------------------------------------------------------------------------


def test_create_resolves_relative_paths_against_base_dir(finished: dict[str, Any]) -> None:
    assert Path(finished["config"]["trialCodeDirectory"]) == REPO / "tests" / "trials"
    assert finished["status"] == "DONE"
    assert finished["trialCounts"]["SUCCEEDED"] == 4


def test_an_invalid_config_is_a_400_naming_the_field(client: Client) -> None:
    with pytest.raises(ApiError) as err:
        client.create_experiment(config(trialConcurrency=0), REPO / "tests")
    assert err.value.status == 400 and "trialConcurrency" in err.value.detail


def test_list_filters_by_status(client: Client, finished: dict[str, Any]) -> None:
    assert finished["id"] in [e["id"] for e in client.list_experiments(status="DONE")]
    assert finished["id"] not in [e["id"] for e in client.list_experiments(status="RUNNING")]


def test_an_unknown_experiment_is_a_404_with_detail(client: Client) -> None:
    with pytest.raises(ApiError) as err:
        client.get_experiment("nosuchexp")
    assert err.value.status == 404 and "nosuchexp" in err.value.detail


def test_update_accepts_snake_and_camel_case(client: Client) -> None:
    exp = running_experiment(client)
    assert client.update_experiment(exp["id"], max_trial_number=7)["maxTrialNumber"] == 7
    assert client.update_experiment(exp["id"], trialConcurrency=1)["trialConcurrency"] == 1
    client.stop(exp["id"])


def test_update_with_an_unknown_field_sends_nothing(client: Client) -> None:
    with pytest.raises(ValueError, match="unknown field 'trialnum'"):
        client.update_experiment("any", trialnum=3)


def test_stop_waits_for_trials_and_resume_continues(client: Client) -> None:
    exp = running_experiment(client)
    stopped = client.stop(exp["id"])
    assert stopped["status"] == "STOPPED" and stopped["trialCounts"]["RUNNING"] == 0
    assert client.resume(exp["id"])["status"] in ("INITIALIZED", "RUNNING")
    wait_until(
        lambda: client.get_experiment(exp["id"])["trialCounts"]["RUNNING"] >= 1, what="a resumed trial"
    )
    with pytest.raises(ApiError) as err:
        client.resume(exp["id"])
    assert err.value.status == 409
    client.stop(exp["id"])


def test_kill_trial_cancels_it(client: Client) -> None:
    exp = running_experiment(client)
    trial = client.trials(exp["id"], status="RUNNING")["items"][0]
    assert client.kill_trial(exp["id"], trial["id"])["status"] == "USER_CANCELED"
    client.stop(exp["id"])


def test_delete_removes_the_experiment(client: Client) -> None:
    exp = client.create_experiment(config(maxTrialNumber=1), REPO / "tests")
    client.delete(exp["id"])
    with pytest.raises(ApiError) as err:
        client.get_experiment(exp["id"])
    assert err.value.status == 404
    assert not Path(exp["experimentDir"]).exists()


def test_ids_with_a_slash_are_refused_before_sending(client: Client) -> None:
    with pytest.raises(ValueError, match="without '/'"):
        client.get_experiment("../experiments")


# -- trials and results --------------------------------------------------------------------------


def test_search_space_is_the_trials_own(client: Client, finished: dict[str, Any]) -> None:
    assert set(client.search_space(finished["id"])) == SPACE_KEYS


def test_trials_are_paged_on_the_server(client: Client, finished: dict[str, Any]) -> None:
    page = client.trials(finished["id"], sort="sequenceId", order="asc", offset=1, limit=2)
    assert page["total"] == 4 and page["offset"] == 1
    assert [t["sequenceId"] for t in page["items"]] == sorted(t["sequenceId"] for t in page["items"])
    assert len(page["items"]) == 2


def test_iter_trials_walks_every_page(client: Client, finished: dict[str, Any]) -> None:
    assert len(list(client.iter_trials(finished["id"]))) == 4


def test_trial_carries_its_intermediate_metrics(client: Client, finished: dict[str, Any]) -> None:
    trial = client.trial(finished["id"], finished["bestTrialId"])
    assert set(trial["parameters"]) == SPACE_KEYS
    assert [m["type"] for m in trial["intermediate"]] == ["PERIODICAL", "PERIODICAL"]


def test_metrics_poll_incrementally(client: Client, finished: dict[str, Any]) -> None:
    first = client.metrics(finished["id"], since=0)
    assert len(first["items"]) == 12  # 4 trials x (2 intermediate + 1 final)
    assert client.metrics(finished["id"], since=first["next"])["items"] == []


def test_best_is_sorted_by_final_metric(client: Client, finished: dict[str, Any]) -> None:
    best = client.best(finished["id"], k=3)
    metrics = [t["finalMetric"] for t in best]
    assert len(best) == 3 and metrics == sorted(metrics, reverse=True)
    assert best[0]["id"] == finished["bestTrialId"]


def test_log_returns_the_text_or_its_tail(client: Client, finished: dict[str, Any]) -> None:
    text = client.log(finished["id"], finished["bestTrialId"], "stdout")
    assert text.startswith("architecture ") and len(text.splitlines()) == 2
    assert client.log(finished["id"], finished["bestTrialId"], "stdout", tail=1).startswith("final ")


def test_export_as_json_and_csv(client: Client, finished: dict[str, Any]) -> None:
    rows = client.export(finished["id"], "json")
    assert isinstance(rows, list) and len(rows) == 4
    table = list(csv.DictReader(io.StringIO(client.export(finished["id"], "csv"))))
    assert len(table) == 4
    assert json.dumps(rows)  # plain JSON all the way down
