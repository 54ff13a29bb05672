"""ProxylessNAS: binary-gate sampling, the latency objective, latency tables, resume, refusals."""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from trials.nas import InputChoice, LayerChoice
from trials.nas.oneshot import Callback, UnsupportedChoiceError, bind_choices, measure_latency
from trials.nas.oneshot.latency import LatencyTable
from trials.nas.oneshot.proxyless import ProxylessTrainer
from trials.nas.zoo.ops import Zero

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from oneshot_memory import saved_bytes

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Net(nn.Module):
    """A stem (or a LayerChoice as the very first layer), two layer choices, a head."""

    def __init__(self, first_choice: bool = False, zero: bool = False) -> None:
        super().__init__()
        if first_choice:
            self.stem: nn.Module = LayerChoice(
                OrderedDict(k1=nn.Conv2d(1, 4, 1), k3=nn.Conv2d(1, 4, 3, padding=1)), key="stem"
            )
        else:
            self.stem = nn.Conv2d(1, 4, 3, padding=1)
        ops = OrderedDict(k1=nn.Conv2d(4, 4, 1), k3=nn.Conv2d(4, 4, 3, padding=1))
        if zero:
            ops["zero"] = Zero(4, 4)
        self.a = LayerChoice(ops, key="a")
        self.b = LayerChoice(
            OrderedDict(conv=nn.Conv2d(4, 4, 3, padding=1), pool=nn.AvgPool2d(3, 1, 1)), key="b"
        )
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.b(torch.relu(self.a(x)))
        return self.head(x.mean(dim=(2, 3)))


def batches(n: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def table_for(model: nn.Module, **costs: dict[str, float]) -> LatencyTable:
    default = {
        "stem": {"k1": 1.0, "k3": 3.0},
        "a": {"k1": 1.0, "k3": 4.0, "zero": 0.1},
        "b": {"conv": 2.0, "pool": 0.5},
    }
    return LatencyTable({**default, **costs}, fixed=1.0)


def trainer(model: nn.Module, **kwargs: Any) -> ProxylessTrainer:
    defaults: dict[str, Any] = {
        "train_data": batches(seed=0),
        "valid_data": batches(seed=1),
        "num_epochs": 1,
        "progress": False,
        "seed": 0,
        "latency_table": table_for(model),
    }
    return ProxylessTrainer(model, **{**defaults, **kwargs})


def test_expected_latency_carries_gradient_to_every_alpha() -> None:
    search = trainer(Net(first_choice=True, zero=True))
    with torch.no_grad():
        for alpha in search.alphas:
            alpha.copy_(torch.linspace(-1, 1, len(alpha)))
    search.expected_latency().backward()
    for group, alpha in zip(search.groups, search.alphas, strict=True):
        assert alpha.grad is not None and torch.all(alpha.grad != 0), group.key


def test_expected_latency_is_fixed_plus_probability_weighted_costs() -> None:
    search = trainer(Net())
    # uniform p at the start: 1 + (1 + 4) / 2 + (2 + 0.5) / 2
    assert search.expected_latency().item() == pytest.approx(1.0 + 2.5 + 1.25)
    assert search.reference_latency == pytest.approx(4.75)


class CandidateCalls(Callback):
    """Counts the candidates that run per optimisation step, per choice."""

    def __init__(self, model: Net) -> None:
        self.calls: dict[str, int] = {}
        self.per_step: list[dict[str, int]] = []
        for key in ("a", "b"):
            for candidate in getattr(model, key).candidates:
                candidate.register_forward_hook(
                    lambda *_, key=key: self.calls.__setitem__(key, self.calls.get(key, 0) + 1)
                )

    def on_step_end(self, trainer: Any, step: int, metrics: Any) -> None:
        self.per_step.append(dict(self.calls))
        self.calls.clear()


def test_weight_step_runs_exactly_one_candidate_per_choice() -> None:
    model = Net(zero=True)
    counter = CandidateCalls(model)
    trainer(model, warmup_epochs=1, callbacks=[counter]).fit()
    assert counter.per_step == [{"a": 1, "b": 1}] * 4


def test_architecture_step_runs_exactly_two_candidates_per_choice() -> None:
    model = Net(zero=True)
    counter = CandidateCalls(model)
    search = trainer(model)
    search.architecture_step(batches(1)[0])
    assert counter.calls == {"a": 2, "b": 2}
    assert all(alpha.grad is None for alpha in search.alphas)  # the step cleans up after itself


def test_latency_report_times_the_exported_network_running_only_its_candidates() -> None:
    model = Net(zero=True)
    search = trainer(model, warmup_epochs=1)
    search.fit()
    with torch.no_grad():
        search.alphas[0].copy_(torch.tensor([0.0, 3.0, 0.0]))  # a: k3
        search.alphas[1].copy_(torch.tensor([0.0, 3.0]))  # b: pool
    ran: set[str] = set()
    for key in ("a", "b"):
        for name, candidate in zip(getattr(model, key).names, getattr(model, key), strict=True):
            candidate.register_forward_hook(lambda *_, name=name: ran.add(name))
    report = search.latency_report(example_input=batches(1)[0][0], repeats=4)
    assert ran == {"k3", "pool"}
    assert report["measured_ms"] > 0
    assert report["exported"] == pytest.approx(1.0 + 4.0 + 0.5)  # fixed + a's k3 + b's pool
    assert model.training  # the report leaves the model as it found it


class Same(nn.Module):
    """Three identical frozen convolutions: the task cannot tell the candidates apart."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(4, 4, 3, padding=1).requires_grad_(False)
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = LayerChoice(
            OrderedDict(slow=conv, mid=copy.deepcopy(conv), cheap=copy.deepcopy(conv)), key="a"
        )
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.a(torch.relu(self.stem(x)))).mean(dim=(2, 3)))


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_a_larger_latency_weight_never_exports_a_slower_network(mode: str) -> None:
    table = LatencyTable({"a": {"slow": 10.0, "mid": 5.0, "cheap": 2.0}}, fixed=1.0)
    exported, expected = [], []
    for weight in (0.0, 0.1, 1.0, 10.0):
        torch.manual_seed(0)
        kwargs: dict[str, Any] = (
            {"latency_weight": weight} if mode == "additive" else {"latency_beta": weight}
        )
        search = trainer(Same(), latency_table=table, latency_mode=mode, arch_lr=0.05, num_epochs=3, **kwargs)
        search.fit()
        report = search.latency_report()
        exported.append(report["exported"])
        expected.append(report["expected"])
    assert exported == sorted(exported, reverse=True)
    assert expected[0] == pytest.approx(1.0 + 17.0 / 3)  # no latency term: alpha never moves
    assert max(expected[1:]) < expected[0]
    if mode == "additive":  # (multiplicative: the changing task loss scales the term, so only the ends)
        assert expected == sorted(expected, reverse=True)
    assert exported[-1] == pytest.approx(1.0 + 2.0)  # the cheap op wins


def test_a_zero_candidate_trains_without_errors() -> None:
    model = Net(zero=True)
    search = trainer(model, num_epochs=2)
    with torch.no_grad():
        search.alphas[0].copy_(torch.tensor([0.0, 0.0, 5.0]))  # mostly the zero path
    search.fit()
    assert search.step == 8
    assert all(torch.isfinite(a).all() for a in search.alphas)


def test_a_choice_of_only_zero_and_pooling_has_no_weights_and_still_runs() -> None:
    class NoWeights(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice(OrderedDict(zero=Zero(1, 1), pool=nn.AvgPool2d(3, 1, 1)), key="a")
            self.head = nn.Linear(1, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.a(x).mean(dim=(2, 3)))

    table = LatencyTable({"a": {"zero": 0.0, "pool": 1.0}}, fixed=1.0)
    search = trainer(NoWeights(), latency_table=table, num_epochs=2)
    search.fit()
    assert search.select() == {"a": [0]}  # latency pushes to the free zero op


def test_a_layer_choice_as_the_first_layer_works() -> None:
    search = trainer(Net(first_choice=True), num_epochs=2)
    architecture = search.fit()
    assert set(architecture) == {"stem", "a", "b"}
    assert search.alphas[0].detach().abs().sum() > 0  # the first choice's alphas moved


def test_profile_times_every_candidate_and_the_table_round_trips_through_json(tmp_path: Path) -> None:
    model = Net(first_choice=True, zero=True)
    search = trainer(model)
    table = LatencyTable.profile(model, search.groups, torch.randn(2, 1, 6, 6), warmup=1, repeats=3)
    assert table.unit == "ms" and table.device == "cpu" and table.fixed >= 0
    assert set(table.candidates) == {"stem", "a", "b"}
    assert all(ms > 0 for row in table.candidates.values() for ms in row.values())
    table.save(tmp_path / "latency.json")
    assert LatencyTable.load(tmp_path / "latency.json") == table


def test_profiling_runs_in_eval_mode_and_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    choice = LayerChoice(OrderedDict(bn=nn.BatchNorm2d(4), same=nn.Identity()), key="c")
    net = nn.Sequential(model, choice).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    LatencyTable.profile(net, bind_choices(net)[1], torch.randn(2, 1, 6, 6), warmup=1, repeats=2)
    assert measure_latency(net, torch.randn(2, 1, 6, 6), warmup=1, repeats=2) > 0
    assert net.training and choice.training
    after = net.state_dict()
    assert all(torch.equal(value, after[key]) for key, value in before.items())  # no BatchNorm update


def test_a_flops_table_charges_a_3x3_convolution_nine_times_a_1x1() -> None:
    model = Net()
    search = trainer(model)
    table = LatencyTable.from_cost(model, search.groups, torch.randn(2, 1, 6, 6), cost="flops")
    row = table.candidates["a"]
    assert table.unit == "MFLOPs"
    assert row["k3"] == pytest.approx(9 * 4 * 4 * 36 / 1e6)
    assert row["k1"] == pytest.approx(4 * 4 * 36 / 1e6)
    assert table.candidates["b"]["pool"] == 0.0
    assert table.fixed == pytest.approx((9 * 4 * 36 + 4 * 10) / 1e6)  # stem and head


def test_a_table_missing_a_candidate_is_an_error_naming_it() -> None:
    table = LatencyTable({"a": {"k1": 1.0}, "b": {"conv": 1.0, "pool": 1.0}})
    with pytest.raises(
        ValueError, match=r"ProxylessTrainer: latency table lacks candidate 'k3' of choice 'a'"
    ):
        trainer(Net(), latency_table=table)
    with pytest.raises(ValueError, match=r"latency table has no choice 'b'"):
        trainer(Net(), latency_table=LatencyTable({"a": {"k1": 1.0, "k3": 1.0}}))


def test_a_table_with_a_bad_cost_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"choice 'a' candidate 'k1' must be a finite number >= 0"):
        LatencyTable({"a": {"k1": -1.0}})
    (tmp_path / "t.json").write_text("{nope")
    with pytest.raises(ValueError, match=r"not a JSON latency table"):
        LatencyTable.load(tmp_path / "t.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_mode": "sum"}, r"latency_mode must be 'additive' or 'multiplicative', got 'sum'"),
        ({"latency_weight": -1.0}, r"latency_weight must be a finite number >= 0"),
        ({"latency_beta": float("nan")}, r"latency_beta must be a finite number >= 0"),
        ({"reference_latency": 0.0}, r"reference_latency must be a finite number > 0"),
        ({"arch_lr": 0.0}, r"arch_lr must be > 0"),
        ({"warmup_epochs": -1}, r"warmup_epochs must be >= 0"),
        ({"arch_every": 0}, r"arch_every must be an integer >= 1"),
        ({"latency_table": {"a": {}}}, r"latency_table must be a LatencyTable, got dict"),
        (
            {"latency_mode": "multiplicative", "reference_latency": 0.5},
            r"multiplicative mode needs reference_latency > 1",
        ),
    ],
)
def test_bad_arguments_give_one_clear_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trainer(Net(), **kwargs)


def test_input_choices_are_refused_with_their_key() -> None:
    class WithInput(Net):
        def __init__(self) -> None:
            super().__init__()
            self.skip = InputChoice(n_candidates=2, n_chosen=1, key="skip")

    with pytest.raises(
        UnsupportedChoiceError, match=r"InputChoice 'skip': ProxylessNAS searches layer choices only"
    ):
        trainer(WithInput())


class Crash(Callback):
    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Any) -> None:
        if epoch + 1 == 2:
            raise KeyboardInterrupt("simulated crash")


def test_resume_after_a_crash_continues_the_same_run(tmp_path: Path) -> None:
    def run(log_dir: Path, **kwargs: Any) -> ProxylessTrainer:
        torch.manual_seed(0)
        model = Net(zero=True)
        return trainer(model, num_epochs=3, log_dir=log_dir, log_every=2, arch_every=2, **kwargs)

    straight = run(tmp_path / "straight")
    expected_arch = straight.fit()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed", callbacks=[Crash()]).fit()
    resumed = run(tmp_path / "crashed", resume=True)
    assert resumed.fit() == expected_arch
    for name in ("weights.jsonl", "metrics.jsonl"):
        assert (tmp_path / "crashed" / name).read_text() == (tmp_path / "straight" / name).read_text()
    expected = straight.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in resumed.model.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, straight.alphas, strict=True))
    assert "expected_latency_ms" in (tmp_path / "crashed" / "metrics.jsonl").read_text()


class Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0 + self.value


def test_two_path_gradient_is_the_binary_gate_estimate_over_the_sampled_pair() -> None:
    class Consts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice([Const(1.0), Const(2.0), Const(4.0)], key="a")
            self.unused = nn.Parameter(torch.zeros(1))  # the weight optimizer needs one

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x)

    search = trainer(Consts(), latency_table=None, loss=lambda out, _: out.mean())
    with torch.no_grad():
        search.alphas[0].copy_(torch.tensor([0.3, -0.2, 0.1]))
    seen: list[torch.Tensor] = []
    search.arch_optimizer.register_step_pre_hook(lambda *_: seen.append(search.alphas[0].grad.clone()))
    search.architecture_step((torch.ones(2, 1), torch.zeros(2)))
    (grad,) = seen
    pair = search.groups[0].modules[0].active
    assert len(pair) == 2
    q = torch.softmax(torch.tensor([0.3, -0.2, 0.1])[pair], 0)
    dg = torch.tensor([1.0, 2.0, 4.0])[pair]  # dL/dg_j: candidate j's output
    expected = torch.zeros(3)
    expected[pair] = q * (dg - (q * dg).sum())  # sum_j dL/dg_j q_j (delta_ij - q_i)
    assert torch.allclose(grad, expected)
    # the rescale keeps the unsampled path's probability
    other = ({0, 1, 2} - set(pair)).pop()
    before = torch.softmax(torch.tensor([0.3, -0.2, 0.1]), 0)[other]
    assert torch.softmax(search.alphas[0].detach(), 0)[other].item() == pytest.approx(before.item())


def test_a_step_keeps_one_or_two_paths_in_memory_where_darts_keeps_all() -> None:
    from trials.nas.oneshot import DartsTrainer

    def wide() -> nn.Module:
        class Wide(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.stem = nn.Conv2d(1, 8, 3, padding=1)
                ops = OrderedDict(
                    (f"c{k}", nn.Sequential(nn.Conv2d(8, 8, k, padding=k // 2), nn.ReLU()))
                    for k in (1, 3, 5, 7)
                )
                self.a = LayerChoice(ops, key="a")
                self.head = nn.Linear(8, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.head(self.a(self.stem(x)).mean(dim=(2, 3)))

        return Wide()

    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    table = LatencyTable({"a": {"c1": 1.0, "c3": 2.0, "c5": 3.0, "c7": 4.0}})
    proxyless = trainer(wide(), latency_table=table)
    darts = DartsTrainer(wide(), train_data=batches(), valid_data=batches(), num_epochs=1, progress=False)

    def weight_step() -> None:
        from trials.nas.oneshot.choices import apply_architecture

        apply_architecture(proxyless.groups, proxyless.sample_paths())
        proxyless.forward_loss(x, y)

    def darts_step() -> None:
        darts.apply_mixture()
        darts.forward_loss(x, y)

    one, two = saved_bytes(weight_step), saved_bytes(lambda: proxyless.architecture_step((x, y)))
    every = saved_bytes(darts_step)
    assert one < two < every


def test_modules_sharing_a_key_share_one_decision_and_add_their_costs() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 4, 1)
            self.a1 = LayerChoice(
                OrderedDict(k1=nn.Conv2d(4, 4, 1), k3=nn.Conv2d(4, 4, 3, padding=1)), key="a"
            )
            self.a2 = LayerChoice(
                OrderedDict(k1=nn.Conv2d(4, 4, 1), k3=nn.Conv2d(4, 4, 3, padding=1)), key="a"
            )
            self.head = nn.Linear(4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.a2(self.a1(self.stem(x))).mean(dim=(2, 3)))

    model = Shared()
    search = trainer(model, latency_table=LatencyTable({"a": {"k1": 1.0, "k3": 2.0}}), num_epochs=2)
    table = LatencyTable.from_cost(model, search.groups, torch.randn(2, 1, 6, 6), cost="params")
    assert table.candidates["a"] == {"k1": pytest.approx(2 * 20 / 1e6), "k3": pytest.approx(2 * 148 / 1e6)}
    search.fit()
    assert model.a1.active == model.a2.active == search.select()["a"]
