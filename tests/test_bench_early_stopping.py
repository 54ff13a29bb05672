"""The early-stopping bench's replay (bench/_es_replay.py) on a tiny hand-made table: its spec."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import early_stopping  # noqa: E402
from _es_replay import Curve, CurveTable, arch_key, load_curves, named_assessor, replay  # noqa: E402

from manager.assessors.base import Assessor, AssessResult  # noqa: E402
from trials.searchspace import SearchSpace  # noqa: E402

#: Three architectures, four epochs each, one training seed; "b" is the best, "c" is slow.
CURVES = {
    "a": Curve((0.2, 0.4, 0.5, 0.6), (1.0, 1.0, 1.0, 1.0)),
    "b": Curve((0.3, 0.6, 0.8, 0.9), (2.0, 2.0, 2.0, 2.0)),
    "c": Curve((0.1, 0.2, 0.3, 0.4), (3.0, 3.0, 3.0, 3.0)),
}
DIGITS_TABLE = REPO / "bench" / "data" / "digits_curves.json"
FULL = sum(sum(c.seconds) for c in CURVES.values())  # 24 s


def tiny_table() -> CurveTable:
    space = SearchSpace.from_json({"op": {"_type": "layer_choice", "_value": list(CURVES)}})
    return CurveTable(space, {arch_key({"op": name}): (curve,) for name, curve in CURVES.items()})


def curve_of(key: str) -> Curve:
    return CURVES[json.loads(key)["op"]]


class StopAllButFirst(Assessor):
    """Good for the first trial it sees, Bad at epoch 1 for every other one."""

    def __init__(self) -> None:
        self.first: str | None = None

    def assess_trial(self, trial_id: str, trial_history: list[float]) -> AssessResult:
        self.first = self.first or trial_id
        return AssessResult.Good if trial_id == self.first else AssessResult.Bad


def test_no_assessor_trains_every_architecture_to_the_end_and_spends_the_sum_of_all_epoch_times() -> None:
    search = replay(tiny_table(), 0, search_seed=3)
    assert sorted(t.arch for t in search.trials) == sorted(arch_key({"op": n}) for n in CURVES)
    assert all(t.completed and t.epochs == 4 for t in search.trials)
    assert search.spent == pytest.approx(FULL)
    assert search.clock == pytest.approx(FULL)


def test_an_assessor_that_stops_all_but_the_first_trial_at_epoch_1_spends_only_their_first_epochs() -> None:
    search = replay(tiny_table(), 0, search_seed=3, assessor=StopAllButFirst)
    first, *others = search.trials
    assert first.completed and first.epochs == 4
    assert [(t.completed, t.epochs) for t in others] == [(False, 1), (False, 1)]
    expected = sum(curve_of(first.arch).seconds) + sum(curve_of(t.arch).seconds[0] for t in others)
    assert search.spent == pytest.approx(expected)
    assert search.spent < FULL


def test_a_stopped_trial_reports_no_final_result() -> None:
    search = replay(tiny_table(), 0, search_seed=3, assessor=StopAllButFirst)
    assert search.best_within(FULL) == search.trials[0].final


def test_at_concurrency_4_the_clock_is_the_longest_worker_and_the_spent_time_the_sum() -> None:
    search = replay(tiny_table(), 0, search_seed=3, concurrency=4)
    assert search.clock == pytest.approx(max(sum(c.seconds) for c in CURVES.values()))  # 12 s
    assert search.spent == pytest.approx(FULL)


def test_at_concurrency_2_a_freed_worker_takes_the_next_trial_at_once() -> None:
    search = replay(tiny_table(), 0, search_seed=3, concurrency=2)
    third = search.trials[2]
    assert third.start == pytest.approx(min(t.end for t in search.trials[:2]))


def test_no_trial_starts_once_the_budget_is_spent() -> None:
    search = replay(tiny_table(), 0, search_seed=3, budget=0.5)
    assert len(search.trials) == 1


def test_the_time_to_reach_the_target_is_when_the_first_good_enough_trial_completes() -> None:
    table = tiny_table()
    search = replay(table, 0, search_seed=3)
    best = next(t for t in search.trials if t.final == table.best_final(0))
    assert search.reached(table.best_final(0)) == (
        pytest.approx(best.end),
        pytest.approx(search.spent_at(best.end)),
    )


@pytest.mark.parametrize("assessor", [None, "Medianstop", "ASHA"])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_search_is_the_same_every_time_for_the_same_seed(assessor: str | None, concurrency: int) -> None:
    factory = named_assessor(assessor) if assessor else None
    runs = [
        replay(tiny_table(), 0, search_seed=7, assessor=factory, concurrency=concurrency) for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_search_seeds_change_the_order_of_proposals() -> None:
    orders = {tuple(t.arch for t in replay(tiny_table(), 0, search_seed=s).trials) for s in range(8)}
    assert len(orders) > 1


def test_a_bad_concurrency_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        replay(tiny_table(), 0, concurrency=0)


def test_a_file_that_is_not_a_curve_table_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a curve table"):
        load_curves(path)


def test_the_shipped_table_holds_every_digits_architecture_with_full_curves() -> None:
    table = load_curves(DIGITS_TABLE)
    assert len(table.curves) == table.space.size() == 96
    lengths = {len(curve.accuracy) for runs in table.curves.values() for curve in runs}
    assert lengths == {6}


def test_the_bench_prints_one_row_per_assessor_and_concurrency_with_ratios_to_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert early_stopping.main(["--seeds", "1", "--workers", "1", "--no-png"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("Random ")]
    assert [(row[1], row[2]) for row in rows] == [(c, a) for c in "14" for a in early_stopping.ASSESSORS]
    assert all(row[5].startswith("x") for row in rows if row[2] != "none")
