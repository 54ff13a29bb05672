"""DARTS: the relaxation, the second-order step, the export rule and what it refuses."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from trials.nas import InputChoice, LayerChoice
from trials.nas.oneshot import DartsTrainer, UnsupportedChoiceError
from trials.nas.zoo.ops import Zero

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Edges(nn.Module):
    """Two edges (``a`` may be ``none``), a switch keeping ``n_chosen`` of them, any-subset skip."""

    def __init__(self, reduction: str = "sum", n_chosen: int = 1) -> None:
        super().__init__()
        self.a = LayerChoice(
            OrderedDict(none=Zero(4, 4), conv=nn.Conv2d(4, 4, 3, padding=1), pool=nn.AvgPool2d(3, 1, 1)),
            reduction=reduction,
            key="a",
        )
        self.b = LayerChoice(OrderedDict(conv=nn.Conv2d(4, 4, 1), pool=nn.MaxPool2d(3, 1, 1)), key="b")
        self.switch = InputChoice(choose_from=["a", "b"], n_chosen=n_chosen, key="switch")
        self.skip = InputChoice(n_candidates=1, n_chosen=None, key="skip")
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        out = self.switch([self.a(x), self.b(x)])
        skip = self.skip([x])
        if skip is not None:
            out = out + skip
        return self.head(out.mean(dim=(2, 3)))


def batches(n: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def trainer(model: nn.Module, **kwargs) -> DartsTrainer:
    defaults = {
        "train_data": batches(seed=0),
        "valid_data": batches(seed=1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
    }
    return DartsTrainer(model, **{**defaults, **kwargs})


def test_layer_choice_that_concatenates_is_refused_with_its_key() -> None:
    with pytest.raises(UnsupportedChoiceError, match=r"LayerChoice 'a': reduction 'concat'.*sum and mean"):
        trainer(Edges(reduction="concat"))


def test_mixture_is_softmax_for_layers_k_softmax_for_k_inputs_and_sigmoid_for_any_subset() -> None:
    model = Edges(n_chosen=1)
    darts = trainer(model)
    with torch.no_grad():
        for alpha in darts.alphas:
            alpha.copy_(torch.linspace(-1, 1, len(alpha)))
    darts.apply_mixture()
    assert torch.allclose(model.a.mask, torch.softmax(torch.linspace(-1, 1, 3), 0))
    assert torch.allclose(model.switch.mask, torch.softmax(torch.linspace(-1, 1, 2), 0))
    assert torch.allclose(model.skip.mask, torch.sigmoid(torch.tensor([-1.0])))
    model2 = Edges(n_chosen=2)
    darts2 = trainer(model2)
    darts2.apply_mixture()
    assert model2.switch.mask.sum().item() == pytest.approx(2.0)


def test_export_never_picks_none_and_keeps_the_edge_with_the_stronger_operation() -> None:
    darts = trainer(Edges(n_chosen=1))
    weights = {"a": [3.0, 1.0, 0.0], "b": [0.2, 0.0], "switch": [0.0, 0.0], "skip": [2.0]}
    with torch.no_grad():
        for group, alpha in zip(darts.groups, darts.alphas, strict=True):
            alpha.copy_(torch.tensor(weights[group.key]))
    architecture = darts.export()
    assert architecture["a"] == {"_value": "conv", "_idx": 1}  # "none" is strongest but never exported
    # equal switch weights, so the edge whose best non-zero op is stronger wins: b's conv (0.55) over a's (0.24)
    assert architecture["switch"] == {"_value": ["b"], "_idx": [1]}
    assert architecture["skip"] == {"_value": ["in0"], "_idx": [0]}  # sigmoid(2) > 0.5


def test_second_order_step_restores_the_weights_and_sets_finite_architecture_gradients() -> None:
    model = Edges()
    darts = trainer(model, unrolled=True)
    (x_train, y_train), (x_valid, y_valid) = batches(1, seed=2)[0], batches(1, seed=3)[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    darts._unrolled_gradient(x_train, y_train, x_valid, y_valid)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    grads = [alpha.grad for alpha in darts.alphas]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_second_order_search_moves_the_architecture_weights() -> None:
    darts = trainer(Edges(), unrolled=True, arch_lr=0.05)
    start = [alpha.detach().clone() for alpha in darts.alphas]
    darts.fit()
    assert any(not torch.allclose(a, b) for a, b in zip(darts.alphas, start, strict=True))


def test_warmup_epochs_leave_the_architecture_weights_alone() -> None:
    darts = trainer(Edges(), warmup_epochs=1)
    start = [alpha.detach().clone() for alpha in darts.alphas]
    darts.fit()
    assert all(torch.equal(a, b) for a, b in zip(darts.alphas, start, strict=True))
