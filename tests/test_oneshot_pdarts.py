"""P-DARTS: stages of growing depth, candidates dropped between them, skip-connect dropout and limit.

Most tests read one short search of ``DartsNetwork(1, 4, 10, n_layers=depth, n_nodes=2)`` on
random 8x8 batches: depths 3, 4, 5 (each has a normal and a reduction cell), two epochs per
stage (one of warm-up), 7 -> 4 -> 2 candidates per edge.
"""

from __future__ import annotations

import io
import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas import LayerChoice, apply_fixed_architecture, dump_search_space
from trials.nas.oneshot import Callback, OneShotTrainer, ProgressPrinter
from trials.nas.oneshot.pdarts import PdartsTrainer
from trials.nas.zoo.darts import DARTS_OPS, DartsNetwork
from trials.nas.zoo.ops import Zero
from trials.searchspace import SearchSpace

DEPTHS = (3, 4, 5)
EPOCHS_PER_STAGE = 2
SKIP = DARTS_OPS.index("skipconnect")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


def darts_network(depth: int) -> nn.Module:
    return DartsNetwork(1, 4, 10, n_layers=depth, n_nodes=2)


def loaders() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 1, 8, 8, generator=g), torch.randint(0, 10, (24,), generator=g)
    train = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8, shuffle=True)
    valid = DataLoader(TensorDataset(x[16:], y[16:]), batch_size=8, shuffle=True)
    return train, valid


class Chain(nn.Module):
    """``depth`` blocks that share one layer choice ``normal_a``, whose first candidate is ``none``."""

    NAMES = ("none", "skipconnect", "conv3x3", "conv1x1", "avgpool", "maxpool")

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.ModuleList(
            LayerChoice(
                OrderedDict(
                    none=Zero(4, 4),
                    skipconnect=nn.Identity(),
                    conv3x3=nn.Conv2d(4, 4, 3, padding=1),
                    conv1x1=nn.Conv2d(4, 4, 1),
                    avgpool=nn.AvgPool2d(3, 1, 1),
                    maxpool=nn.MaxPool2d(3, 1, 1),
                ),
                key="normal_a",
            )
            for _ in range(depth)
        )
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x.mean(dim=(2, 3)))


def pdarts(network: Any = darts_network, **kwargs: Any) -> PdartsTrainer:
    train, valid = loaders()
    settings = {
        "depths": DEPTHS,
        "epochs_per_stage": EPOCHS_PER_STAGE,
        "warmup_epochs": 1,
        "num_to_drop": (3, 2),
        "arch_lr": 0.05,
        "train_data": train,
        "valid_data": valid,
        "seed": 0,
        "progress": False,
        **kwargs,
    }
    return PdartsTrainer(network, **settings)


def layer_choices(model: nn.Module) -> list[LayerChoice]:
    return [m for m in model.modules() if isinstance(m, LayerChoice)]


def set_alphas(trainer: PdartsTrainer, values: dict[str, list[float]]) -> None:
    with torch.no_grad():
        for group, alpha in zip(trainer.groups, trainer.alphas, strict=True):
            if group.key in values:
                alpha.copy_(torch.tensor(values[group.key]))


class Recorder(Callback):
    """Per epoch end: what the model looks like; raises after ``crash_after`` epochs."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.crash_after = crash_after
        self.epochs_begun: list[int] = []
        self.choice_sizes: list[set[int]] = []
        self.parameters: list[int] = []
        self.notes: list[str] = []
        self.skip_dropout_on: list[bool] = []

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        self.epochs_begun.append(epoch)

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Any) -> None:
        self.choice_sizes.append({len(choice) for choice in layer_choices(trainer.model)})
        self.parameters.append(sum(p.numel() for p in trainer.model.parameters()))
        self.notes.append(trainer.progress_note())
        identities = [m for m in trainer.model.modules() if isinstance(m, nn.Identity)]
        self.skip_dropout_on.append(bool(identities) and all(m._forward_hooks for m in identities))
        if self.crash_after is not None and epoch + 1 == self.crash_after:
            raise KeyboardInterrupt("simulated crash")


class Search:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.calls: list[int] = []
        self.recorder = Recorder()
        self.stream = io.StringIO()

        def network(depth: int) -> nn.Module:
            self.calls.append(depth)
            return darts_network(depth)

        self.trainer = pdarts(
            network, log_dir=log_dir, log_every=1, callbacks=[self.recorder, ProgressPrinter(self.stream)]
        )
        self.architecture = self.trainer.fit()

    def lines(self, name: str) -> list[dict]:
        return [json.loads(line) for line in (self.log_dir / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Search:
    return Search(tmp_path_factory.mktemp("pdarts-log"))


def test_network_factory_is_called_with_the_stage_depths_in_order(search: Search) -> None:
    assert search.calls == list(DEPTHS)
    assert search.trainer.num_epochs == len(DEPTHS) * EPOCHS_PER_STAGE


def test_each_stage_physically_keeps_only_the_surviving_candidates(search: Search) -> None:
    # 7 candidates, 3 dropped after stage 1 and 2 after stage 2, two epochs per stage
    assert search.recorder.choice_sizes == [{7}, {7}, {4}, {4}, {2}, {2}]
    full = [sum(p.numel() for p in darts_network(depth).parameters()) for depth in DEPTHS]
    searched = search.recorder.parameters[::EPOCHS_PER_STAGE]
    assert searched[0] == full[0]
    assert searched[1] < full[1] and searched[2] < full[2]
    assert all(len(alive) == 2 for alive in search.trainer.survivors.values())
    pruned = darts_network(DEPTHS[-1])
    for choice in layer_choices(pruned):
        choice.prune(search.trainer.survivors[choice.key])
    assert searched[2] == sum(p.numel() for p in pruned.parameters())  # the survivors' parameters only


def test_progress_line_names_the_stage_and_its_depth(search: Search) -> None:
    assert search.recorder.notes[::EPOCHS_PER_STAGE] == [
        "stage 1/3, 3 cells",
        "stage 2/3, 4 cells",
        "stage 3/3, 5 cells",
    ]
    epochs = [line for line in search.stream.getvalue().splitlines() if line.startswith("epoch ")]
    assert epochs[2].startswith("epoch 3/6 (stage 2/3, 4 cells)")


def test_weights_log_is_full_length_with_dropped_candidates_at_zero(search: Search) -> None:
    space = SearchSpace.from_json(dump_search_space(darts_network(3)))
    lengths = {choice.key: len(choice.candidates) for choice in space.nas_choices}
    zeros_per_stage = {0: 0, 1: 3, 2: 5}
    survivors = search.trainer.survivors
    for line in search.lines("weights.jsonl"):
        weights = line["weights"]
        assert {key: len(values) for key, values in weights.items()} == lengths
        for key, alive in survivors.items():
            zeros = [i for i, w in enumerate(weights[key]) if w == 0.0]
            assert len(zeros) == zeros_per_stage[line["epoch"] // EPOCHS_PER_STAGE]
            assert not set(zeros) & set(alive)  # the final survivors were never dropped
            assert sum(weights[key]) == pytest.approx(1.0)


def test_metrics_log_shows_stage_depth_and_skip_dropout_at_each_epoch_end(search: Search) -> None:
    ends = [line for line in search.lines("metrics.jsonl") if "val_acc" in line["metrics"]]
    assert [line["epoch"] for line in ends] == list(range(6))
    assert [line["metrics"]["stage"] for line in ends] == [1, 1, 2, 2, 3, 3]
    assert [line["metrics"]["depth"] for line in ends] == [3, 3, 4, 4, 5, 5]
    rates = [search.trainer.skip_rate_at(epoch) for epoch in range(6)]
    assert [line["metrics"]["skip_dropout"] for line in ends] == pytest.approx(rates)


def test_export_is_full_length_never_dropped_and_builds_a_network_of_any_depth(search: Search) -> None:
    architecture = search.architecture
    assert json.loads((search.log_dir / "architecture.json").read_text()) == architecture
    space = SearchSpace.from_json(json.loads((search.log_dir / "search_space.json").read_text()))
    assert space.to_json() == dump_search_space(darts_network(3))
    space.parse_architecture(architecture)  # raises if not an architecture of the full space
    for key, alive in search.trainer.survivors.items():
        assert architecture[key]["_idx"] in alive
        assert architecture[key]["_value"] == DARTS_OPS[architecture[key]["_idx"]]
    for depth in (3, 8):
        model = darts_network(depth)
        apply_fixed_architecture(model, architecture)
        assert not layer_choices(model)
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_skip_dropout_is_on_through_the_search_and_removed_when_it_ends(search: Search) -> None:
    assert search.recorder.skip_dropout_on == [True] * 6
    identities = [m for m in search.trainer.model.modules() if isinstance(m, nn.Identity)]
    assert identities and not any(m._forward_hooks for m in identities)


def test_each_stage_gets_a_new_optimizer_and_scheduler_from_the_factories() -> None:
    built: list[tuple[torch.optim.Optimizer, int]] = []

    def scheduler(optimizer: torch.optim.Optimizer, epochs: int) -> Any:
        built.append((optimizer, epochs))
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    trainer = pdarts(
        Chain,
        depths=(1, 2),
        num_to_drop=(3,),
        skip_dropout=(0.0, 0.0),
        epochs_per_stage=2,
        warmup_epochs=0,
        optimizer_factory=lambda params: torch.optim.SGD(params, lr=0.1),
        lr_scheduler_factory=scheduler,
    )
    trainer.fit()
    assert [epochs for _, epochs in built] == [2, 2]
    assert built[-1][0] is trainer.optimizer and trainer.lr_scheduler.optimizer is trainer.optimizer
    assert {id(p) for p in trainer.optimizer.param_groups[0]["params"]} == {
        id(p) for p in trainer.model.parameters()
    }
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)  # restarted with the stage


@pytest.mark.parametrize("crash_after", [3, 4], ids=["mid-stage", "stage-boundary"])
def test_resume_continues_the_same_run_bit_for_bit(search: Search, crash_after: int, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        pdarts(log_dir=tmp_path, log_every=1, callbacks=[Recorder(crash_after=crash_after)]).fit()
    recorder = Recorder()
    resumed = pdarts(log_dir=tmp_path, log_every=1, resume=True, callbacks=[recorder])
    architecture = resumed.fit()
    assert recorder.epochs_begun == list(range(crash_after, 6))
    assert architecture == search.architecture
    for name in ("weights.jsonl", "metrics.jsonl"):
        assert (tmp_path / name).read_text() == (search.log_dir / name).read_text()
    expected = search.trainer.model.state_dict()
    state = resumed.model.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(value, expected[key]) for key, value in state.items())


def test_resume_refuses_a_checkpoint_of_other_stages(tmp_path: Path) -> None:
    pdarts(
        depths=(3, 4),
        num_to_drop=(3,),
        skip_dropout=(0.1, 0.4),
        epochs_per_stage=1,
        warmup_epochs=0,
        log_dir=tmp_path,
    ).fit()
    again = pdarts(
        depths=(3, 5),
        num_to_drop=(3,),
        skip_dropout=(0.1, 0.4),
        epochs_per_stage=1,
        warmup_epochs=0,
        log_dir=tmp_path,
        resume=True,
    )
    with pytest.raises(ValueError, match=r"checkpoint's search ran depths \[3, 4\].*this one \[3, 5\]"):
        again.fit()


def test_the_weakest_candidates_are_dropped_and_a_zero_candidate_first() -> None:
    trainer = pdarts(
        Chain,
        depths=(1, 2),
        num_to_drop=(3,),
        skip_dropout=(0.0, 0.0),
        epochs_per_stage=1,
        warmup_epochs=0,
        arch_lr=0.0,
    )
    # "none" is the strongest, yet goes first; then the two weakest (conv1x1, maxpool)
    set_alphas(trainer, {"normal_a": [5.0, 0.1, 1.0, -1.0, 0.5, -0.5]})
    trainer.fit()
    assert trainer.survivors == {"normal_a": [1, 2, 4]}
    assert [choice.names for choice in layer_choices(trainer.model)] == [
        ["skipconnect", "conv3x3", "avgpool"]
    ] * 2
    assert trainer.choice_weights()["normal_a"][0] == trainer.choice_weights()["normal_a"][3] == 0.0


def test_dropping_never_leaves_a_choice_without_a_candidate() -> None:
    trainer = pdarts(
        Chain,
        depths=(1, 1),
        num_to_drop=(10,),
        skip_dropout=(0.0, 0.0),
        epochs_per_stage=1,
        warmup_epochs=0,
        arch_lr=0.0,
    )
    set_alphas(trainer, {"normal_a": [5.0, 0.1, 1.0, -1.0, 0.5, 2.0]})
    architecture = trainer.fit()
    assert trainer.survivors == {"normal_a": [5]}
    assert architecture["normal_a"] == {"_value": "maxpool", "_idx": 5}


def test_carried_architecture_weights_start_from_the_survivors() -> None:
    trainer = pdarts(
        depths=(3, 4),
        num_to_drop=(3,),
        skip_dropout=(0.0, 0.0),
        epochs_per_stage=1,
        warmup_epochs=0,
        arch_lr=0.0,
        carry_arch_weights=True,
    )
    first = {group.key: torch.randn(len(group)) for group in trainer.groups}
    set_alphas(trainer, {key: values.tolist() for key, values in first.items()})
    trainer.fit()
    for group, alpha in zip(trainer.groups, trainer.alphas, strict=True):
        alive = trainer.survivors.get(group.key, list(range(len(first[group.key]))))
        assert len(alive) == (4 if group.is_layer else len(first[group.key]))
        assert torch.equal(alpha.detach(), first[group.key][alive])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", r"network of stage 2 \(network\(4\)\) lacks the choice 'normal_n3_p0'"),
        (
            "candidates",
            r"choice 'reduce_n2_p0' of the network of stage 2 \(network\(4\)\) has layer candidates",
        ),
        ("extra", r"network of stage 2 \(network\(4\)\) has the choice 'extra', which the first stage's"),
    ],
    ids=["missing-key", "other-candidates", "extra-key"],
)
def test_a_network_whose_space_differs_is_refused_naming_the_key_and_stage(change: str, message: str) -> None:
    def network(depth: int) -> nn.Module:
        if depth == 3:
            return darts_network(depth)
        if change == "missing":
            return DartsNetwork(1, 4, 10, n_layers=depth, n_nodes=1)
        model = darts_network(depth)
        if change == "candidates":
            for choice in layer_choices(model):
                if choice.key == "reduce_n2_p0":
                    choice.prune(range(6))
        else:
            model.extra = LayerChoice([nn.Identity(), nn.ReLU()], key="extra")
        return model

    trainer = pdarts(
        network, depths=(3, 4), num_to_drop=(3,), skip_dropout=(0.1, 0.4), epochs_per_stage=1, warmup_epochs=0
    )
    with pytest.raises(ValueError, match=message):
        trainer.fit()


def test_warmup_epochs_of_every_stage_leave_the_architecture_weights_alone() -> None:
    class Watch(Callback):
        """At every epoch end: whether the architecture weights were never stepped, and their values."""

        def __init__(self) -> None:
            self.untouched: list[bool] = []
            self.alphas: list[list[torch.Tensor]] = []

        def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Any) -> None:
            assert isinstance(trainer, PdartsTrainer)
            self.untouched.append(
                not trainer.arch_optimizer.state and all(a.grad is None for a in trainer.alphas)
            )
            self.alphas.append([a.detach().clone() for a in trainer.alphas])

    watch = Watch()
    trainer = pdarts(
        depths=(3, 4),
        num_to_drop=(3,),
        skip_dropout=(0.1, 0.4),
        epochs_per_stage=3,
        warmup_epochs=2,
        callbacks=[watch],
    )
    start = [alpha.detach().clone() for alpha in trainer.alphas]
    trainer.fit()
    assert watch.untouched == [True, True, False, True, True, False]
    assert all(torch.equal(a, b) for a, b in zip(watch.alphas[1], start, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(watch.alphas[3], watch.alphas[4], strict=True))
    assert all(a.abs().max() < 0.01 for a in watch.alphas[3])  # the second stage's start afresh (1e-3 scale)
    assert any(a.abs().max() > 0.01 for a in watch.alphas[2])  # where the first stage's had got to
    assert any(not torch.equal(a, b) for a, b in zip(watch.alphas[4], watch.alphas[5], strict=True))


def test_skip_dropout_follows_the_paper_schedule_in_every_stage() -> None:
    trainer = pdarts(
        epochs_per_stage=5, warmup_epochs=2, skip_dropout=(0.1, 0.4, 0.0), skip_dropout_decay=0.2
    )
    rates = [trainer.skip_rate_at(epoch) for epoch in range(15)]
    expected = [0.1 * 4 / 5, 0.1 * 3 / 5, 0.1, 0.1 * math.exp(-0.2), 0.1 * math.exp(-0.4)]
    expected += [0.4 * 4 / 5, 0.4 * 3 / 5, 0.4, 0.4 * math.exp(-0.2), 0.4 * math.exp(-0.4)]
    expected += [0.0] * 5
    assert rates == pytest.approx(expected)


def test_skip_dropout_acts_only_on_parameter_free_skips_in_training() -> None:
    trainer = pdarts()
    trainer.skip_rate = 0.5
    trainer._install_skip_dropout()
    choices: dict[str, LayerChoice] = {}
    for choice in layer_choices(trainer.model):
        choices.setdefault(choice.key, choice)  # the first cell's: 4 channels, 8 in the first reduction cell
    identity = choices["normal_n2_p0"]["skipconnect"]  # stride 1: nn.Identity, no parameters
    reduce = choices["reduce_n2_p0"]["skipconnect"]  # stride 2: a learned FactorizedReduce
    conv = choices["normal_n2_p0"]["sepconv3x3"]
    x = torch.ones(4, 4, 8, 8)
    out = identity(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, the rest scaled by 1 / (1 - p)
    xr = torch.randn(4, 8, 8, 8)
    with_rate = reduce(xr)
    trainer.skip_rate = 0.0
    assert torch.equal(with_rate, reduce(xr))
    assert not conv._forward_hooks
    trainer.skip_rate = 0.5
    trainer.model.eval()
    assert torch.equal(identity(x), x)


def test_export_keeps_at_most_max_skip_skip_connects_replacing_the_weakest() -> None:
    def logits(skip: float) -> list[float]:
        values = [0.0] * len(DARTS_OPS)
        values[SKIP], values[DARTS_OPS.index("sepconv3x3")] = skip, 1.0
        return values

    strengths = {"n2_p0": 3.0, "n2_p1": 2.0, "n3_p0": 2.5, "n3_p1": 1.5, "n3_p2": 4.0}
    weights: dict[str, list[float]] = {}
    for prefix in ("normal", "reduce"):
        weights.update({f"{prefix}_{edge}": logits(skip) for edge, skip in strengths.items()})
        weights[f"{prefix}_n3_switch"] = [1.0, 1.0, -5.0]  # n3_p2 is not live
    limited = pdarts(depths=(3,), num_to_drop=(), skip_dropout=(0.1,), max_skip=2)
    set_alphas(limited, weights)
    architecture = limited.export()
    chosen = {key: value["_value"] for key, value in architecture.items() if not key.endswith("switch")}
    assert architecture["normal_n3_switch"]["_value"] == ["normal_n3_p0", "normal_n3_p1"]
    # four live skips in the normal cell: the two weakest (n3_p1, n2_p1) yield to their next best
    assert chosen == {
        "normal_n2_p0": "skipconnect",
        "normal_n2_p1": "sepconv3x3",
        "normal_n3_p0": "skipconnect",
        "normal_n3_p1": "sepconv3x3",
        "normal_n3_p2": "skipconnect",  # not live, so not counted
        **{f"reduce_{edge}": "skipconnect" for edge in strengths},  # not limited
    }
    unlimited = pdarts(depths=(3,), num_to_drop=(), skip_dropout=(0.1,), max_skip=None)
    set_alphas(unlimited, weights)
    assert all(
        value["_value"] == "skipconnect"
        for key, value in unlimited.export().items()
        if not key.endswith("switch")
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_epochs": 10}, r"num_epochs cannot be given.*use depths and epochs_per_stage"),
        ({"optimizer": None}, r"optimizer cannot be given.*use optimizer_factory"),
        ({"lr_scheduler": None}, r"lr_scheduler cannot be given.*use lr_scheduler_factory"),
        ({"network": 3}, r"network must be a callable depth -> super-net"),
        ({"depths": ()}, r"depths must be a non-empty sequence of cell counts, each at least 1, got \(\)"),
        ({"depths": (3, 0, 5)}, r"depths must be .* at least 1, got \(3, 0, 5\)"),
        ({"epochs_per_stage": 0}, r"epochs_per_stage must be an int at least 1, got 0"),
        (
            {"warmup_epochs": 2},
            r"warmup_epochs must be an int in 0\.\.1 \(less than epochs_per_stage 2\), got 2",
        ),
        (
            {"num_to_drop": (3,)},
            r"num_to_drop must be a sequence of 2 counts >= 0 \(one per stage but the last\)",
        ),
        ({"num_to_drop": (3, -1)}, r"num_to_drop must be .*, got \(3, -1\)"),
        (
            {"skip_dropout": (0.1, 0.4)},
            r"skip_dropout must be a sequence of 3 rates in \[0, 1\) \(one per stage\)",
        ),
        ({"skip_dropout": (0.1, 0.4, 1.0)}, r"skip_dropout must be .*, got \(0\.1, 0\.4, 1\.0\)"),
        ({"skip_dropout_decay": -0.2}, r"skip_dropout_decay must be a finite number >= 0, got -0\.2"),
        ({"max_skip": -1}, r"max_skip must be None \(no limit\) or an int >= 0, got -1"),
        (
            {"skip_names": "skipconnect"},
            r"skip_names must be a collection of candidate names \(strings\), not one string",
        ),
        ({"limited_prefix": None}, r"limited_prefix must be a string"),
        ({"optimizer_factory": "sgd"}, r"optimizer_factory must be None or a callable, got 'sgd'"),
        ({"carry_arch_weights": "yes"}, r"carry_arch_weights must be True or False, got 'yes'"),
    ],
    ids=lambda value: ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_a_bad_argument_is_one_clear_error_naming_it(kwargs: dict[str, Any], message: str) -> None:
    network = kwargs.pop("network", darts_network)
    with pytest.raises(ValueError, match=r"^PdartsTrainer: " + message):
        pdarts(network, **kwargs)
