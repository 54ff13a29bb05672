"""The batched DARTS step computes the textbook one: a few steps against a plain reference.

The reference is written out here from the paper's definitions, with none of the trainer's
shortcuts: every candidate called as a module and scaled by its own weight, each node's edges
mixed one by one, full ``backward()`` in both steps, per-parameter (not ``foreach``) Adam, SGD
and clipping. Same seed, same weights, same alphas, same batches: the results agree within
float32 rounding.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from trials.nas import LayerChoice
from trials.nas.oneshot import DartsTrainer
from trials.nas.zoo import DartsNetwork
from trials.nas.zoo.darts import DartsEdge
from trials.nas.zoo.ops import Zero

Batch = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Small tensors: threads only contend (minutes instead of a second on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batches(n: int, seed: int) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(n)]


def small_network() -> DartsNetwork:
    torch.manual_seed(0)
    return DartsNetwork(3, 4, 10, n_layers=3, n_nodes=2)


def plain_forward(net: DartsNetwork, mixture: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """DARTS' super-net as the paper writes it: node = sum_i s_i sum_j w_ij op_ij(x_i)."""
    s0 = s1 = net.stem(x)
    for cell in net.cells:
        states = [cell.preproc0(s0), cell.preproc1(s1)]
        for node in cell.nodes:
            total: Any = 0
            switch = mixture[node.switch.key]
            for i, (edge, state) in enumerate(zip(node.edges, states, strict=False)):
                w = mixture[edge.key]
                mixed: Any = 0
                for j, candidate in enumerate(edge.candidates):
                    mixed = mixed + candidate(state) * w[j]
                total = total + mixed * switch[i]
            states.append(total)
        s0, s1 = s1, torch.cat(states[2:], dim=1)
    return net.classifier(net.dropout(net.pool(s1).flatten(1)))


def plain_steps(
    net: DartsNetwork, alphas: list[torch.Tensor], keys: list[str], data: list[Batch], valid: list[Batch]
):
    """First-order DARTS, one architecture step and one weight step per batch, written out."""
    alphas = [nn.Parameter(a.detach().clone()) for a in alphas]
    arch = torch.optim.Adam(alphas, lr=0.01, betas=(0.5, 0.999), weight_decay=1e-3, foreach=False)
    sgd = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4, foreach=False)

    def mixture(detach: bool) -> dict[str, torch.Tensor]:
        out = {}
        for key, alpha in zip(keys, alphas, strict=True):
            a = alpha.detach() if detach else alpha
            out[key] = 2 * torch.softmax(a, -1) if key.endswith("_switch") else torch.softmax(a, -1)
        return out

    for (x, y), (xv, yv) in zip(data, valid, strict=False):
        arch.zero_grad()
        F.cross_entropy(plain_forward(net, mixture(False), xv), yv).backward()
        arch.step()
        sgd.zero_grad()
        F.cross_entropy(plain_forward(net, mixture(True), x), y).backward()
        nn.utils.clip_grad_norm_(list(net.parameters()), 5.0, foreach=False)
        sgd.step()
    return alphas


def test_three_darts_steps_match_the_plain_computation() -> None:
    data, valid = batches(3, 1), batches(3, 2)
    net = small_network()
    reference = copy.deepcopy(net)
    trainer = DartsTrainer(net, train_data=data, valid_data=valid, num_epochs=1, arch_lr=0.01, progress=False)
    start = [a.detach().clone() for a in trainer.alphas]
    keys = [group.key for group in trainer.groups]
    trainer.train_epoch(0)
    expected = plain_steps(reference, start, keys, data, valid)
    for key, got, want in zip(keys, trainer.alphas, expected, strict=True):
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-4, atol=1e-6, msg=key)
    for (name, got), want in zip(net.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=name)


def relu_calls(run: Any) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return sum(1 for e in prof.events() if e.name == "aten::relu")


def test_a_darts_edge_mixture_computes_its_input_relu_once() -> None:
    torch.manual_seed(0)
    edge = DartsNetwork(3, 4, 10, n_layers=3, n_nodes=2).cells[0].nodes[0].edges[0]
    assert isinstance(edge, DartsEdge)
    edge.set_mask(torch.softmax(torch.randn(len(edge)), -1))
    x = torch.randn(2, 4, 8, 8)
    # one shared ReLU, plus the second ReLU inside each of the two separable convolutions
    assert relu_calls(lambda: edge(x)) == 3
    expected = sum(candidate(x) * w for candidate, w in zip(edge.candidates, edge.mask, strict=True))
    torch.testing.assert_close(edge(x), expected)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_a_float_mask_mixes_candidates_as_a_weighted_sum(reduction: str) -> None:
    torch.manual_seed(0)
    candidates = [nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1), nn.Identity()]
    choice = LayerChoice(candidates, reduction=reduction, key="c")
    weights = torch.softmax(torch.randn(3), -1)
    choice.set_mask(weights)
    x = torch.randn(2, 2, 5, 5)
    expected = sum(c(x) * w for c, w in zip(candidates, weights, strict=True))
    torch.testing.assert_close(choice(x), expected / 3 if reduction == "mean" else expected)


def test_a_mixture_skips_its_zero_candidate_and_keeps_its_value_and_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        LayerChoice({"conv": nn.Conv2d(2, 2, 1), "none": Zero(2, 2)}, key="c"), nn.Flatten(), nn.Linear(50, 2)
    )
    data = [(torch.randn(2, 2, 5, 5), torch.tensor([0, 1]))]
    trainer = DartsTrainer(model, train_data=data, valid_data=data, num_epochs=1, progress=False)
    trainer.apply_mixture()
    choice = model[0]
    assert choice.active == [0]
    x = data[0][0]
    alpha = trainer.alphas[0]
    out = choice(x)
    expected = (
        choice["conv"](x) * torch.softmax(alpha, -1)[0] + choice["none"](x) * torch.softmax(alpha, -1)[1]
    )
    torch.testing.assert_close(out, expected)
    (grad,) = torch.autograd.grad(out.sum(), alpha)
    (want,) = torch.autograd.grad(expected.sum(), alpha)
    torch.testing.assert_close(grad, want)


def test_capture_step_on_the_cpu_warns_says_why_and_trains_as_the_eager_step() -> None:
    data, valid = batches(2, 1), batches(2, 2)
    results = []
    for capture in (False, True):
        kwargs: dict[str, Any] = {"capture_step": True} if capture else {}
        net = small_network()
        if capture:
            with pytest.warns(
                UserWarning, match="capture_step runs eagerly: device 'cpu' is not a CUDA device"
            ):
                trainer = DartsTrainer(
                    net, train_data=data, valid_data=valid, num_epochs=1, progress=False, **kwargs
                )
            assert trainer.capture_note == "device 'cpu' is not a CUDA device"
        else:
            trainer = DartsTrainer(
                net, train_data=data, valid_data=valid, num_epochs=1, progress=False, **kwargs
            )
        torch.manual_seed(0)
        for alpha in trainer.alphas:
            nn.init.normal_(alpha, std=1e-3)
        trainer.train_epoch(0)
        results.append(([a.detach().clone() for a in trainer.alphas], net.state_dict()))
    (alphas, state), (alphas_captured, state_captured) = results
    for a, b in zip(alphas, alphas_captured, strict=True):
        assert torch.equal(a, b)
    for name, value in state.items():
        assert torch.equal(value, state_captured[name]), name


def test_a_mean_mixture_keeps_its_zero_candidate_in_the_divisor() -> None:
    torch.manual_seed(0)
    choice = LayerChoice({"conv": nn.Conv2d(2, 2, 1), "none": Zero(2, 2)}, reduction="mean", key="c")
    model = nn.Sequential(choice, nn.Flatten(), nn.Linear(50, 2))
    data = [(torch.randn(2, 2, 5, 5), torch.tensor([0, 1]))]
    trainer = DartsTrainer(model, train_data=data, valid_data=data, num_epochs=1, progress=False)
    trainer.apply_mixture()
    x = data[0][0]
    weights = torch.softmax(trainer.alphas[0], -1)
    torch.testing.assert_close(
        choice(x), (choice["conv"](x) * weights[0] + choice["none"](x) * weights[1]) / 2
    )
