"""Bad input anywhere (configs, search-space and architecture files, REST bodies and queries, CLI
arguments): one clear message naming the field, 4xx or a non-zero exit, and nothing created or
changed. The schema-driven fuzzer (schemathesis, no 5xx among its checks) is test_openapi_contract.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability.helpers import SPACE6, InProcessDaemon, faulty_config, nasctl
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = InProcessDaemon(tmp_path_factory.mktemp("bad-input") / "home", kill_grace=1.0)
    yield running
    running.close()


@pytest.fixture(scope="module")
def finished(served: Any) -> dict[str, Any]:
    exp = served.create(faulty_config("ok", maxTrialNumber=2))
    return served.wait_for_status(exp["id"], "DONE")


def snapshot(served: Any) -> tuple[Any, list[str], int]:
    """What a refused request must leave as it was: experiments, folders, events."""
    experiments = served.client.get("/experiments").json()
    root = served.home / "experiments"
    folders = sorted(p.name for p in root.iterdir()) if root.exists() else []
    events = sum(len(served.daemon.store.events(e["id"])) for e in experiments)
    return experiments, folders, events


BAD_CONFIGS: list[tuple[dict[str, Any], int, str]] = [
    ({"trialConcurrency": "two"}, 400, "trialConcurrency: must be a whole number"),
    ({"trialConcurrency": 0}, 400, "trialConcurrency: must be a whole number"),
    ({"maxTrialNumber": -3}, 400, "maxTrialNumber"),
    ({"maxTrialDuration": "-1h"}, 400, "maxTrialDuration"),
    ({"trialConcurency": 2}, 400, "did you mean 'trialConcurrency'"),
    ({"tuner": {"name": "Randon"}}, 400, "did you mean 'Random'"),
    ({"searchSpace": None, "searchSpaceFile": "/no/such/space.json"}, 400, "/no/such/space.json"),
    ({"trialCodeDirectory": "/no/such/folder"}, 400, "trialCodeDirectory"),
    ({"searchSpace": {"conv": {"_type": "layer_choice", "_value": []}}}, 400, "conv"),
    (  # a space the chosen tuner cannot handle
        {"searchSpace": {"lr": {"_type": "choice", "_value": [{"_name": "a", "x": 1}]}}},
        400,
        "'lr': nested choices",
    ),
]


@pytest.mark.parametrize(("change", "status", "words"), BAD_CONFIGS)
def test_a_bad_config_is_refused_naming_the_field_and_creates_nothing(
    served: Any, finished: dict[str, Any], change: dict[str, Any], status: int, words: str
) -> None:
    before = snapshot(served)
    config = {k: v for k, v in {**faulty_config(), **change}.items() if v is not None}
    response = served.client.post("/experiments", json={"config": config, "baseDir": "/"})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail
    assert snapshot(served) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"trialConcurrency": -1}, "trialConcurrency: must be a whole number from 1"),
        ({"maxTrialNumber": 2.5}, "maxTrialNumber: must be a whole number"),
        ({"maxExperimentDuration": "soon"}, "maxExperimentDuration: must be seconds > 0"),
        ({"trialConcurrency": 2, "maxTrialNumbr": 3}, "did you mean 'maxTrialNumber'"),
        ({}, "nothing to change"),
    ],
)
def test_a_bad_patch_is_refused_and_changes_nothing(
    served: Any, finished: dict[str, Any], body: dict[str, Any], words: str
) -> None:
    before = snapshot(served)
    response = served.client.patch(f"/experiments/{finished['id']}", json=body)
    assert response.status_code == 400 and words in response.json()["detail"]
    assert snapshot(served) == before


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1, 2]", b'"config"', b"\xff\xfe", b"[" * 100_000, b'{"config": {}, "extra": 1}'],
)
def test_a_malformed_body_is_a_4xx_with_one_line(served: Any, raw: bytes) -> None:
    before = snapshot(served)
    response = served.client.post("/experiments", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert "\n" not in response.json()["detail"]
    assert snapshot(served) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("create", "--config", "/no/such/exp.yaml"), "/no/such/exp.yaml"),
        (("trial", "ls", "x", "--top", "-1"), "--top"),
        (("create",), "--config"),
        (("no-such-command",), "No such command"),
    ],
)
def test_bad_cli_arguments_give_one_error_line_and_a_non_zero_exit(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    home = tmp_path / "home"
    done = nasctl(home, *args, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "nasctl.db").exists()  # nothing was started or created


# -- property-based: files --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
architectures = st.dictionaries(
    st.sampled_from(["conv", "skip", "other", "_idx"]),
    json_values
    | st.fixed_dictionaries({"_value": json_values, "_idx": json_values})
    | st.sampled_from(["conv3x3", "maxpool", "in0", "in1"])
    | st.lists(st.sampled_from(["in0", "in1", "in2"]), max_size=3),
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(architectures, json_values))
def test_any_architecture_file_gives_an_architecture_or_one_clear_error(tmp_path: Path, arch: Any) -> None:
    space = SearchSpace.from_json(SPACE6)
    try:
        decisions = space.parse_architecture(arch, source="arch.json")
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
    else:
        assert set(decisions) == set(SPACE6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_search_space_file_gives_a_space_or_a_search_space_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "space.json"
    path.write_bytes(content)
    try:
        SearchSpace.load(path)
    except SearchSpaceError as exc:
        assert str(exc) and "\n" not in str(exc)
