"""CDARTS: the cycle between the search and evaluation networks, its losses, schedule, log and resume.

The shared search runs tiny DARTS networks (a 3-cell search network, a 5-cell evaluation
network with affine BatchNorm) on a slice of scikit-learn's digits for three epochs, the
first a warm-up. The distributed search is in ``test_oneshot_cdarts_distributed.py``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from nas_models import digits_loaders
from torch import nn

from trials.nas import LayerChoice, apply_fixed_architecture, dump_search_space
from trials.nas.oneshot import Callback, OneShotTrainer
from trials.nas.oneshot.cdarts import CdartsTrainer, distillation_loss
from trials.nas.zoo import DartsNetwork
from trials.searchspace import SearchSpace

EPOCHS = 3
WARMUP = 1


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


def search_net() -> DartsNetwork:
    return DartsNetwork(1, 4, 10, n_layers=3, n_nodes=2)


def eval_net(**kwargs: Any) -> DartsNetwork:
    return DartsNetwork(1, 4, 10, n_layers=5, n_nodes=2, affine=True, **kwargs)


def random_batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def small_trainer(
    model: nn.Module | None = None, eval_model: nn.Module | None = None, **kwargs: Any
) -> CdartsTrainer:
    torch.manual_seed(0)
    settings: dict[str, Any] = {
        "train_data": random_batches(2, seed=0),
        "valid_data": random_batches(2, seed=1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
        **kwargs,
    }
    return CdartsTrainer(model or search_net(), eval_model or eval_net(), **settings)


class Recorder(Callback):
    """Each epoch's summary, step metrics and the networks' choices; raises after ``crash_after`` epochs."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.summaries: list[dict[str, float]] = []
        self.steps: list[list[dict[str, float]]] = []
        self.eval_active: list[dict[str, list[list[int]]]] = []
        self.strongest: list[dict[str, list[int]]] = []
        self.epochs_begun: list[int] = []
        self.crash_after = crash_after

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        self.epochs_begun.append(epoch)
        self.steps.append([])

    def on_step_end(self, trainer: OneShotTrainer, step: int, metrics: Any) -> None:
        self.steps[-1].append(dict(metrics))

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Any) -> None:
        assert isinstance(trainer, CdartsTrainer)
        self.summaries.append(dict(metrics))
        self.eval_active.append({g.key: [m.active for m in g.modules] for g in trainer.eval_groups})
        self.strongest.append(trainer.select())
        if self.crash_after is not None and epoch + 1 == self.crash_after:
            raise KeyboardInterrupt("simulated crash")


def digits_trainer(log_dir: Path, **kwargs: Any) -> CdartsTrainer:
    torch.manual_seed(0)
    model, evaluation = search_net(), eval_net()
    train, valid = digits_loaders(192, 64)
    return CdartsTrainer(
        model,
        evaluation,
        train_data=train,
        valid_data=valid,
        num_epochs=EPOCHS,
        warmup_epochs=WARMUP,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        eval_optimizer=torch.optim.Adam(evaluation.parameters(), lr=0.01),
        arch_lr=0.01,
        l1_fraction=0.5,
        log_dir=log_dir,
        log_every=4,
        seed=0,
        progress=False,
        **kwargs,
    )


class Search:
    def __init__(self, trainer: CdartsTrainer, architecture: dict, log_dir: Path, recorder: Recorder) -> None:
        self.trainer, self.architecture = trainer, architecture
        self.log_dir, self.recorder = log_dir, recorder

    def lines(self, name: str) -> list[dict]:
        return [json.loads(line) for line in (self.log_dir / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Search:
    log_dir = tmp_path_factory.mktemp("cdarts-log")
    recorder = Recorder()
    trainer = digits_trainer(log_dir, callbacks=[recorder])
    return Search(trainer, trainer.fit(), log_dir, recorder)


# -- the cycle ------------------------------------------------------------------------------------
def test_warmup_moves_neither_the_architecture_weights_nor_the_evaluation_network() -> None:
    trainer = small_trainer(num_epochs=2)  # the default warm-up: 2 epochs
    alphas = [alpha.detach().clone() for alpha in trainer.alphas]
    evaluation = {k: v.clone() for k, v in trainer.eval_model.state_dict().items()}
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert all(torch.equal(a, b) for a, b in zip(trainer.alphas, alphas, strict=True))
    assert all(torch.equal(v, evaluation[k]) for k, v in trainer.eval_model.state_dict().items())
    assert any(not torch.equal(v, weights[k]) for k, v in trainer.model.state_dict().items())


def test_eval_lr_scheduler_steps_once_per_epoch_warmup_included_without_a_warning() -> None:
    model, evaluation = search_net(), eval_net()
    optimizer = torch.optim.SGD(evaluation.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = small_trainer(
        model,
        evaluation,
        eval_optimizer=optimizer,
        eval_lr_scheduler=scheduler,
        num_epochs=2,
        warmup_epochs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert trainer.algorithm_state()["eval_lr_scheduler"]["last_epoch"] == 2


def test_evaluation_network_runs_the_search_networks_strongest_candidates_after_every_epoch(
    search: Search,
) -> None:
    recorder = search.recorder
    assert len(recorder.eval_active) == EPOCHS
    for active, strongest in zip(recorder.eval_active, recorder.strongest, strict=True):
        assert active == {key: [indices] * len(active[key]) for key, indices in strongest.items()}


def test_architecture_weights_move_after_the_warmup(search: Search) -> None:
    weights = search.lines("weights.jsonl")
    warm, last = weights[0]["weights"], weights[-1]["weights"]
    assert weights[0]["epoch"] < WARMUP
    change = max(abs(a - b) for key in warm for a, b in zip(warm[key], last[key], strict=True))
    assert change > 0.01


def test_distillation_is_t_squared_batchmean_kl_of_the_softened_evaluation_and_search_outputs() -> None:
    g = torch.Generator().manual_seed(0)
    search_logits = torch.randn(5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    eval_logits = torch.randn(5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    t = 2.0
    p = torch.softmax(eval_logits / t, dim=1)
    q = torch.softmax(search_logits / t, dim=1)
    # batchmean: the sum over the classes, averaged over the rows
    by_hand = t * t * (p * (p.log() - q.log())).sum() / 5
    loss = distillation_loss(search_logits, eval_logits, t)
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    loss.backward()
    # both networks learn from it
    assert search_logits.grad is not None and search_logits.grad.abs().sum() > 0
    assert eval_logits.grad is not None and eval_logits.grad.abs().sum() > 0
    assert distillation_loss(search_logits, search_logits, t).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_recorded_in_the_search_is_finite_and_non_negative(search: Search) -> None:
    joint = [step for epoch in search.recorder.steps[WARMUP:] for step in epoch if "distill_loss" in step]
    assert joint and all(math.isfinite(s["distill_loss"]) and s["distill_loss"] >= 0 for s in joint)


def test_l1_coefficient_falls_linearly_to_zero_at_the_expected_epoch_and_stays_there() -> None:
    trainer = small_trainer(num_epochs=12, warmup_epochs=2, l1_weight=5.0, l1_fraction=0.5)
    # fades over (12 - 2) * 0.5 = 5 epochs after the warm-up: 0 from epoch 2 + 5 = 7 on
    expected = [0, 0, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0]
    assert [trainer.l1_coefficient(epoch) for epoch in range(12)] == pytest.approx(expected)


def test_l1_coefficient_covers_only_the_parameter_free_candidates() -> None:
    trainer = small_trainer()
    free = {"maxpool", "avgpool", "skipconnect"}
    for group in trainer.groups:
        names = {group.candidates[i] for i in trainer.free_candidates[group.key]}
        if not group.is_layer:
            assert names == set()
        elif group.key in ("reduce_n2_p0", "reduce_n2_p1", "reduce_n3_p0", "reduce_n3_p1"):
            assert names == free - {"skipconnect"}  # a strided skip is a FactorizedReduce, with weights
        else:
            assert names == free
    with torch.no_grad():
        for alpha in trainer.alphas:
            alpha.fill_(0.5)
    trainer.l1_norm().backward()
    for group, alpha in zip(trainer.groups, trainer.alphas, strict=True):
        grad = alpha.grad if alpha.grad is not None else torch.zeros_like(alpha)  # input choices: untouched
        assert torch.nonzero(grad).flatten().tolist() == trainer.free_candidates[group.key]


def test_l1_coefficient_counts_a_zero_candidate_and_not_a_convolution() -> None:
    class Edge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            ops = OrderedDict(none=ZeroOp(), conv=nn.Conv2d(1, 1, 3, padding=1), pool=nn.AvgPool2d(3, 1, 1))
            self.op = LayerChoice(ops, key="op")
            self.head = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.op(x).flatten(1))

    class ZeroOp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0

    assert small_trainer(Edge(), Edge()).free_candidates == {"op": [0, 2]}


# -- what a search produces ---------------------------------------------------------------------
def test_search_lowers_the_training_loss_of_both_networks(search: Search) -> None:
    summaries = search.recorder.summaries
    assert summaries[-1]["train_loss"] < summaries[0]["train_loss"] - 0.1
    assert "train_eval_loss" not in summaries[0]  # the warm-up does not train the evaluation network
    # each epoch's new export brings candidates it has not trained yet, so compare with its very first step
    first_step = next(step["eval_loss"] for step in search.recorder.steps[WARMUP] if "eval_loss" in step)
    assert summaries[-1]["train_eval_loss"] < first_step - 0.3


def test_epoch_means_count_each_metric_over_the_steps_that_report_it(search: Search) -> None:
    steps, summary = search.recorder.steps[-1], search.recorder.summaries[-1]
    joint = [s["loss"] for s in steps if "loss" in s]
    evaluation = [s["eval_loss"] for s in steps if "eval_loss" in s]
    assert len(joint) == len(evaluation) == len(steps) // 2
    assert summary["train_loss"] == pytest.approx(sum(joint) / len(joint))
    assert summary["train_eval_loss"] == pytest.approx(sum(evaluation) / len(evaluation))


def test_metrics_record_distillation_the_l1_coefficient_and_the_evaluation_network(search: Search) -> None:
    names = {name for line in search.lines("metrics.jsonl") for name in line["metrics"]}
    assert {"train_distill_loss", "train_l1_coefficient", "train_eval_loss", "train_eval_acc"} <= names
    assert {"val_loss", "val_acc", "val_eval_loss", "val_eval_acc"} <= names
    penalties = [s["train_l1_coefficient"] for s in search.recorder.summaries[WARMUP:]]
    assert penalties == pytest.approx([5.0, 0.0])  # l1_fraction 0.5 of 2 epochs: gone after the first


def test_architectures_jsonl_has_the_export_of_every_epoch(search: Search) -> None:
    lines = search.lines("architectures.jsonl")
    assert [line["epoch"] for line in lines] == list(range(EPOCHS))
    assert lines[-1]["architecture"] == search.architecture
    space = SearchSpace.from_json(dump_search_space(search_net()))
    for line in lines:
        space.parse_architecture(line["architecture"])


def test_export_is_valid_and_builds_the_retraining_network(search: Search) -> None:
    assert json.loads((search.log_dir / "architecture.json").read_text()) == search.architecture
    SearchSpace.from_json(dump_search_space(eval_net())).parse_architecture(search.architecture)
    network = eval_net()
    apply_fixed_architecture(network, search.architecture)
    assert network(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


# -- what it refuses ------------------------------------------------------------------------------
def test_eval_model_without_a_key_of_the_search_network_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"eval_model has no choice 'normal_n2_p0', which model has"):
        small_trainer(eval_model=eval_net(shared_keys=False))


def test_eval_model_with_other_candidates_is_refused_naming_the_key() -> None:
    def edge(*names: str) -> nn.Module:
        ops = OrderedDict((name, nn.Conv2d(1, 10, 3, padding=1)) for name in names)
        return nn.Sequential(LayerChoice(ops, key="op"), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    with pytest.raises(
        ValueError, match=r"choice 'op' differs.*model has LayerChoice 'op' of \(a, b\).*\(a, c\)"
    ):
        small_trainer(edge("a", "b"), edge("a", "c"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"warmup_epochs": -1}, r"warmup_epochs must be >= 0, got -1"),
        ({"temperature": 0.0}, r"temperature must be a number > 0, got 0.0"),
        ({"distill_weight": -1.0}, r"distill_weight must be a number >= 0, got -1.0"),
        ({"l1_weight": math.nan}, r"l1_weight must be a number >= 0, got nan"),
        ({"l1_fraction": 1.5}, r"l1_fraction .* must be between 0 and 1, got 1.5"),
        ({"unrolled": True}, r"unrolled=True does not apply"),
    ],
)
def test_bad_arguments_are_refused_with_one_clear_error(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_trainer(**arguments)


def test_the_search_network_itself_is_refused_as_the_evaluation_network() -> None:
    model = search_net()
    with pytest.raises(ValueError, match=r"eval_model must be a network of its own"):
        small_trainer(model, model)


# -- resume ---------------------------------------------------------------------------------------
def test_resume_after_a_crash_continues_the_same_run(search: Search, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        digits_trainer(tmp_path, callbacks=[Recorder(crash_after=2)]).fit()
    recorder = Recorder()
    resumed = digits_trainer(tmp_path, resume=True, callbacks=[recorder])
    architecture = resumed.fit()
    assert recorder.epochs_begun == [2]

    assert architecture == search.architecture
    for name in ("weights.jsonl", "metrics.jsonl", "architectures.jsonl"):
        assert (tmp_path / name).read_text() == (search.log_dir / name).read_text()
    straight = search.trainer
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, straight.alphas, strict=True))
    for mine, theirs in ((resumed.model, straight.model), (resumed.eval_model, straight.eval_model)):
        expected = theirs.state_dict()
        assert all(torch.equal(value, expected[key]) for key, value in mine.state_dict().items())


# -- on a GPU -------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_a_cycle_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    trainer = small_trainer(
        num_epochs=2, warmup_epochs=1, device="cuda", mixed_precision=True, log_dir=tmp_path
    )
    start = [alpha.detach().clone() for alpha in trainer.alphas]
    architecture = trainer.fit()
    assert all(alpha.is_cuda and torch.isfinite(alpha).all() for alpha in trainer.alphas)
    assert any(not torch.equal(a, b) for a, b in zip(trainer.alphas, start, strict=True))
    assert all(p.is_cuda for p in trainer.eval_model.parameters())
    metrics = [json.loads(line)["metrics"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(value is not None for line in metrics for value in line.values())  # finite losses
    network = eval_net().cuda()
    apply_fixed_architecture(network, architecture)
    assert F.softmax(network(torch.randn(2, 1, 8, 8, device="cuda")), dim=1).shape == (2, 10)
