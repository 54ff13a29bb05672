"""What every one-shot trainer (DARTS, ENAS, SPOS, P-DARTS, CDARTS, ProxylessNAS) must do, on the same short search.

Each algorithm searches the digits example's ``DigitsNet`` (three layer choices and an input
choice that keeps any subset; ProxylessNAS, which searches layer choices only, gets it with the
skip fixed off) for three epochs on a slice of scikit-learn's digits; the tests read that run and
its search log. Algorithm-specific behaviour is in
``test_oneshot_<algorithm>.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from nas_models import digits_loaders, digits_net, flops_table
from torch import nn

from trials.nas import apply_fixed_architecture, dump_search_space
from trials.nas.oneshot import (
    Callback,
    CdartsTrainer,
    DartsTrainer,
    EnasTrainer,
    OneShotTrainer,
    PdartsTrainer,
    ProxylessTrainer,
    SposTrainer,
)
from trials.searchspace import SearchSpace

ALGORITHMS = ("darts", "enas", "spos", "pdarts", "cdarts", "proxyless")
EPOCHS = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Recorder(Callback):
    """Keeps every epoch's summary; raises after ``crash_after`` epochs to simulate a crash."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.summaries: list[dict[str, float]] = []
        self.epochs_begun: list[int] = []
        self.crash_after = crash_after

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        self.epochs_begun.append(epoch)

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Any) -> None:
        self.summaries.append(dict(metrics))
        if self.crash_after is not None and epoch + 1 == self.crash_after:
            raise KeyboardInterrupt("simulated crash")


def model_for(algorithm: str) -> nn.Module:
    """``DigitsNet``; for ProxylessNAS without its input choice (a layer-choice-only space)."""
    return digits_net(skip=algorithm != "proxyless")


def make_trainer(algorithm: str, log_dir: Path, num_epochs: int = EPOCHS, **kwargs: Any) -> OneShotTrainer:
    torch.manual_seed(0)
    model = model_for(algorithm)
    train, valid = digits_loaders(640, 128, valid_batch_size=64)
    common = {
        "train_data": train,
        "valid_data": valid,
        "num_epochs": num_epochs,
        "optimizer": torch.optim.Adam(model.parameters(), lr=0.01),
        "log_dir": log_dir,
        "log_every": 3,
        "seed": 0,
        "progress": False,
        **kwargs,
    }
    if algorithm == "darts":
        return DartsTrainer(model, arch_lr=0.01, **common)
    if algorithm == "pdarts":
        # one stage of the digits model: the checks every trainer passes (stages: test_oneshot_pdarts.py)
        del common["num_epochs"], common["optimizer"]
        return PdartsTrainer(
            lambda depth: model,
            depths=(1,),
            epochs_per_stage=num_epochs,
            warmup_epochs=0,
            num_to_drop=(),
            skip_dropout=(0.1,),
            optimizer_factory=lambda params: torch.optim.Adam(params, lr=0.01),
            arch_lr=0.01,
            **common,
        )
    if algorithm == "cdarts":
        return CdartsTrainer(model, digits_net(), warmup_epochs=1, arch_lr=0.01, **common)
    if algorithm == "proxyless":
        return ProxylessTrainer(model, latency_table=flops_table(model), arch_lr=0.01, **common)
    if algorithm == "enas":
        return EnasTrainer(
            model, controller_lr=0.01, controller_steps=8, controller_aggregate=4, export_samples=3, **common
        )
    return SposTrainer(
        model, population_size=6, generations=2, parents=3, bn_batches=2, eval_batches=1, **common
    )


class Search:
    def __init__(
        self, trainer: OneShotTrainer, architecture: dict, log_dir: Path, recorder: Recorder
    ) -> None:
        self.trainer, self.architecture, self.log_dir, self.recorder = (
            trainer,
            architecture,
            log_dir,
            recorder,
        )

    def lines(self, name: str) -> list[dict]:
        return [json.loads(line) for line in (self.log_dir / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Search]:
    done = {}
    for algorithm in ALGORITHMS:
        log_dir = tmp_path_factory.mktemp(f"{algorithm}-log")
        recorder = Recorder()
        trainer = make_trainer(algorithm, log_dir, callbacks=[recorder])
        done[algorithm] = Search(trainer, trainer.fit(), log_dir, recorder)
    return done


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_search_lowers_the_training_loss(searches: dict[str, Search], algorithm: str) -> None:
    summaries = searches[algorithm].recorder.summaries
    assert len(summaries) == EPOCHS
    assert summaries[-1]["train_loss"] < summaries[0]["train_loss"] - 0.1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_architecture_weights_move(searches: dict[str, Search], algorithm: str) -> None:
    weights = searches[algorithm].lines("weights.jsonl")
    first, last = weights[0]["weights"], weights[-1]["weights"]
    change = max(abs(a - b) for key in first for a, b in zip(first[key], last[key], strict=True))
    assert change > 0.02


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_export_is_a_valid_architecture_that_builds_the_plain_model(
    searches: dict[str, Search], algorithm: str
) -> None:
    architecture = searches[algorithm].architecture
    space = SearchSpace.from_json(dump_search_space(model_for(algorithm)))
    space.parse_architecture(architecture)  # raises if not an architecture of the space
    model = model_for(algorithm)
    apply_fixed_architecture(model, architecture)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_export_in_nni_multi_hot_form_is_the_same_architecture(
    searches: dict[str, Search], algorithm: str
) -> None:
    trainer = searches[algorithm].trainer
    multi_hot = trainer.export(multi_hot=True)
    assert all(isinstance(v, list) and all(isinstance(b, bool) for b in v) for v in multi_hot.values())
    space = SearchSpace.from_json(dump_search_space(model_for(algorithm)))
    assert space.parse_architecture(multi_hot) == space.parse_architecture(searches[algorithm].architecture)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_export_is_written_last_as_architecture_json(searches: dict[str, Search], algorithm: str) -> None:
    search = searches[algorithm]
    assert json.loads((search.log_dir / "architecture.json").read_text()) == search.architecture
    assert search.trainer.export() == search.architecture


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_search_log_is_well_formed(searches: dict[str, Search], algorithm: str) -> None:
    search = searches[algorithm]
    space_json = json.loads((search.log_dir / "search_space.json").read_text())
    assert space_json == dump_search_space(model_for(algorithm))
    space = SearchSpace.from_json(space_json)

    graph = json.loads((search.log_dir / "graph.json").read_text())
    ids = [node["id"] for node in graph["nodes"]]
    assert graph["version"] == 1 and graph["traced"] is True and len(ids) == len(set(ids))
    choices = {node["key"]: node["candidates"] for node in graph["nodes"] if node["type"].endswith("_choice")}
    assert choices == {choice.key: list(choice.candidates) for choice in space.nas_choices}
    ends = {node["id"] for node in graph["nodes"] if node["type"] != "scope"}
    assert all(edge["source"] in ends and edge["target"] in ends for edge in graph["edges"])

    weights = search.lines("weights.jsonl")
    steps = [line["step"] for line in weights]
    assert steps == sorted(set(steps)) and steps[0] > 0
    for line in weights:
        assert set(line) == {"step", "epoch", "weights"}
        assert {key: len(values) for key, values in line["weights"].items()} == {
            choice.key: len(choice.candidates) for choice in space.nas_choices
        }

    metrics = search.lines("metrics.jsonl")
    assert all(set(line) == {"step", "epoch", "metrics"} for line in metrics)
    names = {name for line in metrics for name in line["metrics"]}
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= names
    assert [line["epoch"] for line in metrics if "val_acc" in line["metrics"]] == list(range(EPOCHS))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_after_a_crash_continues_the_same_run(
    searches: dict[str, Search], algorithm: str, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        make_trainer(algorithm, tmp_path, callbacks=[Recorder(crash_after=2)]).fit()
    recorder = Recorder()
    resumed = make_trainer(algorithm, tmp_path, resume=True, callbacks=[recorder])
    architecture = resumed.fit()
    assert recorder.epochs_begun == [2]

    straight = searches[algorithm]
    assert architecture == straight.architecture
    for name in ("weights.jsonl", "metrics.jsonl"):
        assert (tmp_path / name).read_text() == (straight.log_dir / name).read_text()
    expected = straight.trainer.model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in resumed.model.state_dict().items())
