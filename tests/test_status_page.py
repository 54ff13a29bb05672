"""The `nasctl status` page says why trials wait (issue 3: "a trial waiting for a GPU says why")."""

from __future__ import annotations

from nasctl.output import format_decision, status_text

EXPERIMENT = {
    "id": "k3f9a2c1",
    "name": "gpu-run",
    "status": "RUNNING",
    "maxTrialNumber": 8,
    "trialCounts": {"RUNNING": 1, "WAITING": 1, "SUCCEEDED": 2},
    "bestTrialId": None,
    "startTime": 1,
    "endTime": 2,
}


def test_status_shows_why_a_trial_waits() -> None:
    page = status_text(EXPERIMENT, None, "needs 1 GPU: GPU 0 is full (1/1 trials)")
    assert "waiting     needs 1 GPU: GPU 0 is full (1/1 trials)" in page.splitlines()


def test_status_has_no_waiting_line_when_nothing_waits() -> None:
    assert not any(line.startswith("waiting") for line in status_text(EXPERIMENT, None).splitlines())


def test_nameless_candidates_show_as_their_index() -> None:
    # a search space made by NNI's ss_gen names both inputs of InputChoice(n_candidates=2) ""
    assert format_decision({"_value": [""], "_idx": [1]}) == "[#1]"
    assert format_decision({"_value": "", "_idx": 0}) == "#0"
    assert format_decision({"_value": ["in0", "in1"], "_idx": [0, 1]}) == "[in0, in1]"
