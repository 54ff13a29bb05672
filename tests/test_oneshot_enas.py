"""ENAS: what the controller samples, that REINFORCE moves it towards the rewarded choice, and
how a model's auxiliary head is trained (NNI's ``aux_weight``)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trials.nas import InputChoice, LayerChoice
from trials.nas.oneshot import Callback, EnasTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Shift(nn.Module):
    """Moves every one-hot logit to the next class: always wrong."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.roll(1, dims=1)


class Oracle(nn.Module):
    """Inputs are the one-hot labels, so ``right`` scores accuracy 1 and ``wrong`` 0.

    Also holds input choices of both kinds, so their sampling can be checked.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.op = LayerChoice(OrderedDict(wrong=Shift(), right=nn.Identity()), key="op")
        self.pick = InputChoice(n_candidates=4, n_chosen=2, key="pick")
        self.any = InputChoice(n_candidates=3, n_chosen=None, key="any")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op(x) * self.scale
        extra = self.any([x * 0, x * 0, x * 0])
        picked = self.pick([x * 0, x * 0, x * 0, x * 0])
        return out + picked + (extra if extra is not None else 0)


def one_hot_batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        labels = torch.randint(0, 10, (16,), generator=g)
        out.append((10 * nn.functional.one_hot(labels, 10).float(), labels))
    return out


def enas(**kwargs) -> EnasTrainer:
    defaults = {
        "train_data": one_hot_batches(2, 0),
        "valid_data": one_hot_batches(4, 1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
    }
    return EnasTrainer(Oracle(), **{**defaults, **kwargs})


def test_controller_samples_n_chosen_distinct_inputs_and_any_subset_for_none() -> None:
    trainer = enas()
    picks, subsets = set(), set()
    with torch.no_grad():
        for _ in range(60):
            architecture = trainer.controller.sample().architecture
            assert len(architecture["op"]) == 1
            assert len(set(architecture["pick"])) == 2 and all(0 <= i < 4 for i in architecture["pick"])
            picks.add(tuple(architecture["pick"]))
            subsets.add(tuple(architecture["any"]))
    assert len(picks) > 3 and len(subsets) > 3  # it explores


def test_greedy_sample_is_the_same_every_time() -> None:
    trainer = enas()
    with torch.no_grad():
        first = trainer.controller.sample(greedy=True).architecture
        assert all(trainer.controller.sample(greedy=True).architecture == first for _ in range(5))


def test_reinforce_raises_the_probability_of_the_rewarded_candidate() -> None:
    trainer = enas(
        num_epochs=3, controller_lr=0.05, controller_steps=30, controller_aggregate=2, baseline_decay=0.9
    )
    before = trainer.choice_weights()["op"][1]
    trainer.fit()
    with torch.no_grad():
        after = sum(trainer.controller.sample().probabilities["op"][1] for _ in range(20)) / 20
    assert after > before + 0.2
    assert trainer.export()["op"]["_value"] == "right"


class TwoHeads(nn.Module):
    """Main logits are the one-hot inputs (always right), the auxiliary head's a linear map."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(10, 10)
        self.aux = nn.Linear(10, 10)
        self.op = LayerChoice(OrderedDict(only=nn.Identity()), key="op")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.op(x)
        return self.main(hidden), self.aux(hidden)


class StepLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.epochs: list[dict] = []

    def on_step_end(self, trainer, step, metrics) -> None:  # type: ignore[no-untyped-def]
        self.losses.append(metrics["loss"])

    def on_epoch_end(self, trainer, epoch, metrics) -> None:  # type: ignore[no-untyped-def]
        self.epochs.append(dict(metrics))


def tensor_accuracy(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Fails on a tuple: the metrics must only ever see the logits."""
    return {"acc": (output.argmax(dim=1) == target).float().mean().item()}


def two_heads(model: nn.Module, **kwargs) -> EnasTrainer:
    defaults = {
        "train_data": one_hot_batches(1, 0),
        "valid_data": one_hot_batches(2, 1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
        "controller_steps": 2,
        "export_samples": 1,
    }
    return EnasTrainer(model, **{**defaults, **kwargs})


def test_a_pair_output_trains_on_the_main_loss_plus_aux_weight_times_the_aux_loss() -> None:
    torch.manual_seed(0)
    model = TwoHeads()
    inputs, labels = one_hot_batches(1, 0)[0]
    with torch.no_grad():
        logits, aux = model.main(inputs), model.aux(inputs)  # the choice's only candidate: identity
        expected = F.cross_entropy(logits, labels) + 0.25 * F.cross_entropy(aux, labels)
    steps = StepLosses()
    two_heads(model, aux_weight=0.25, callbacks=[steps]).fit()
    assert steps.losses == [pytest.approx(expected.item(), rel=1e-6)]


def test_the_users_loss_and_metrics_receive_tensors_never_the_pair() -> None:
    received: list[type] = []

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        received.append(type(output))
        return F.cross_entropy(output, target)

    two_heads(TwoHeads(), loss=loss, metrics=tensor_accuracy).fit()  # train, reward, validation, export
    assert received and all(kind is torch.Tensor for kind in received)
    assert len(received) > 3  # two per child step, one per evaluated batch


def test_the_controller_reward_is_the_accuracy_of_the_main_logits() -> None:
    torch.manual_seed(0)
    model = TwoHeads()
    with torch.no_grad():  # main head: the identity (always right); auxiliary head: always wrong
        model.main.weight.copy_(torch.eye(10))
        model.main.bias.zero_()
        model.aux.weight.copy_(torch.eye(10).roll(1, dims=0))
        model.aux.bias.zero_()
    epochs = StepLosses()
    two_heads(
        model,
        metrics=tensor_accuracy,
        entropy_weight=0.0,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        callbacks=[epochs],
    ).fit()
    assert epochs.epochs[0]["controller_reward"] == pytest.approx(1.0)
    assert epochs.epochs[0]["val_acc"] == pytest.approx(1.0)


def test_aux_weight_zero_trains_the_main_head_only() -> None:
    torch.manual_seed(0)
    model = TwoHeads()
    aux_before = [p.detach().clone() for p in model.aux.parameters()]
    main_before = [p.detach().clone() for p in model.main.parameters()]
    two_heads(model, aux_weight=0.0).fit()
    assert all(p.grad is None for p in model.aux.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.aux.parameters(), aux_before, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(model.main.parameters(), main_before, strict=True))


@pytest.mark.parametrize("aux_weight", [-0.1, float("nan"), float("inf"), "0.4", True])
def test_aux_weight_must_be_a_finite_number_at_least_zero(aux_weight: object) -> None:
    with pytest.raises(ValueError, match="aux_weight must be a finite number >= 0"):
        two_heads(TwoHeads(), aux_weight=aux_weight)


# -- cell_exit_extra_step (NNI's EnasMutator option for cells) --------------------------------------


class TwoCells(nn.Module):
    """Two scoped cells; the second cell's input choice names the first cell's key."""

    def __init__(self) -> None:
        super().__init__()
        from trials.nas import MutableScope

        class Cell(MutableScope):
            def __init__(self, key: str, sources: list[str]) -> None:
                super().__init__(key)
                self.pick = InputChoice(choose_from=sources, n_chosen=1, key=f"{key}_in") if sources else None
                self.op = LayerChoice([nn.Identity(), nn.ReLU()], key=f"{key}_op")

            def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
                return self.op(self.pick(inputs) if self.pick is not None else inputs[0])

        self.stem = nn.Linear(4, 4)
        self.cell_a = Cell("cell_a", [])
        self.cell_b = Cell("cell_b", ["", "cell_a"])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.cell_a([s])
        return self.head(self.cell_b([s, a]))


def test_scope_exits_mark_where_the_controller_leaves_each_cell() -> None:
    from trials.nas.oneshot.enas import scope_exits

    model = TwoCells()
    trainer = EnasTrainer(model, train_data=[], valid_data=[], num_epochs=0, progress=False)
    assert [g.key for g in trainer.groups] == ["cell_a_op", "cell_b_in", "cell_b_op"]
    assert scope_exits(model, trainer.groups) == {0: ["cell_a"], 2: ["cell_b"]}


@pytest.mark.parametrize("extra_step", [False, True])
def test_with_cell_exit_extra_step_an_input_naming_a_cell_attends_to_its_exit_state(extra_step: bool) -> None:
    trainer = EnasTrainer(
        TwoCells(),
        train_data=[],
        valid_data=[],
        num_epochs=0,
        progress=False,
        cell_exit_extra_step=extra_step,
    )
    sample = trainer.controller.sample()
    sample.log_prob.backward()
    anchor = trainer.controller.anchors[1]  # cell_b_in's stand-ins: "" (no key), then "cell_a"
    assert anchor.grad is not None
    assert (anchor.grad[1].abs().sum() == 0) == extra_step  # the exit state replaced the stand-in
