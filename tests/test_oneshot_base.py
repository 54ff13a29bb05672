"""The shared base of the one-shot trainers: devices, progress, stopping, checkpoints, the graph."""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from nas_models import digits_net
from torch import nn

from trials.nas import InputChoice, LayerChoice
from trials.nas.oneshot import (
    Callback,
    DartsTrainer,
    OneShotTrainer,
    ProgressPrinter,
    SposTrainer,
    build_graph,
)
from trials.nas.oneshot.choices import bind_choices


class Tiny(nn.Module):
    """Flat inputs, one layer choice and a skip: a search costs milliseconds."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.op = LayerChoice(OrderedDict(wide=nn.Linear(width, width), act=nn.ReLU()), key="op")
        self.skip = InputChoice(choose_from=["op"], n_chosen=None, key="skip")
        self.out = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        y = self.op(h)
        s = self.skip([h])
        return self.out(y if s is None else y + s)


def batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(n)]


def tiny_trainer(
    cls: type[OneShotTrainer] = DartsTrainer, model: nn.Module | None = None, **kwargs
) -> OneShotTrainer:
    defaults = {
        "train_data": batches(),
        "valid_data": batches(),
        "num_epochs": 2,
        "progress": False,
        "seed": 0,
    }
    if cls is SposTrainer:
        defaults.update(population_size=2, generations=0, parents=1, bn_batches=1)
    return cls(model or Tiny(), **{**defaults, **kwargs})


def test_mixed_precision_needs_a_cuda_device() -> None:
    with pytest.raises(ValueError, match="mixed_precision needs a CUDA device, got device 'cpu'"):
        tiny_trainer(mixed_precision=True)


def test_an_unknown_device_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        tiny_trainer(device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_where_there_is_none_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="CUDA is not available here"):
        tiny_trainer(device="cuda")


def test_progress_prints_one_line_per_epoch_and_says_validation_is_the_supernet() -> None:
    stream = io.StringIO()
    tiny_trainer(callbacks=[ProgressPrinter(stream)]).fit()
    lines = stream.getvalue().splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all("val_acc" in line and "super-net" in line for line in epochs)
    assert lines[0].startswith("[DARTS] searching 2 choices") and lines[-1].startswith("[DARTS] exported:")


def test_a_callback_can_stop_the_search_after_an_epoch_and_it_still_exports(tmp_path: Path) -> None:
    class StopAtOnce(Callback):
        def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics) -> None:
            trainer.request_stop()

    trainer = tiny_trainer(num_epochs=5, callbacks=[StopAtOnce()], log_dir=tmp_path)
    architecture = trainer.fit()
    assert trainer.epoch == 1
    assert json.loads((tmp_path / "architecture.json").read_text()) == architecture


def test_resume_refuses_a_checkpoint_of_another_search_space(tmp_path: Path) -> None:
    tiny_trainer(log_dir=tmp_path, num_epochs=1).fit()
    with pytest.raises(ValueError, match="search space differs from this model's"):
        tiny_trainer(model=digits_net(), log_dir=tmp_path, resume=True).fit()


def test_resume_refuses_a_checkpoint_of_another_algorithm(tmp_path: Path) -> None:
    tiny_trainer(log_dir=tmp_path, num_epochs=1).fit()
    with pytest.raises(ValueError, match="a checkpoint of 'DartsTrainer'.*not of SposTrainer"):
        tiny_trainer(SposTrainer, log_dir=tmp_path, resume=True).fit()


def test_resume_without_a_checkpoint_starts_afresh(tmp_path: Path) -> None:
    trainer = tiny_trainer(log_dir=tmp_path, resume=True)
    trainer.fit()
    assert trainer.epoch == 2 and (tmp_path / "checkpoint.pt").exists()


def test_a_fresh_search_replaces_an_old_log(tmp_path: Path) -> None:
    tiny_trainer(log_dir=tmp_path).fit()
    first = (tmp_path / "weights.jsonl").read_text()
    tiny_trainer(log_dir=tmp_path).fit()
    assert (tmp_path / "weights.jsonl").read_text() == first


def test_graph_follows_the_data_through_choices_and_plain_operations() -> None:
    model = digits_net()
    _, groups = bind_choices(model)
    graph = build_graph(model, groups, torch.zeros(2, 1, 8, 8))
    edges = {(e["source"], e["target"], e.get("candidate")) for e in graph["edges"]}
    assert edges == {
        ("input", "stem", None),
        ("stem", "conv1", None),
        ("conv1", "conv2", None),
        ("conv1", "skip", 0),
        ("conv2", "pool", None),
        ("skip", "pool", None),
        ("pool", "conv3", None),
        ("conv3", "head", None),
        ("head", "output", None),
    }
    types = {node["id"]: node["type"] for node in graph["nodes"]}
    assert types["conv1"] == "layer_choice" and types["skip"] == "input_choice" and types["stem"] == "module"


def test_graph_groups_the_choices_of_a_cell_under_it() -> None:
    from trials.nas.zoo import NASBench201Network

    model = NASBench201Network(4, 1, 10, in_channels=1)
    _, groups = bind_choices(model)
    graph = build_graph(model, groups, torch.zeros(1, 1, 8, 8))
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes["cells.0"]["type"] == "scope" and nodes["cells.0"]["label"] == "NASBench201Cell"
    assert nodes["cells.0.layers.0.0"]["parent"] == "cells.0" and nodes["cells.0.layers.0.0"]["key"] == "0_1"
    assert ("cells.0.layers.0.0", "cells.0.layers.1.1") in {
        (e["source"], e["target"]) for e in graph["edges"]
    }


def test_an_untraceable_model_still_gets_its_nodes() -> None:
    class Picky(Tiny):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("only real data, please")

    model = Picky()
    _, groups = bind_choices(model)
    graph = build_graph(model, groups, torch.zeros(1, 4))
    assert graph["traced"] is False and graph["edges"] == []
    assert {node["id"] for node in graph["nodes"]} >= {"inp", "op", "skip", "out"}


def test_set_mask_with_active_runs_only_those_candidates_without_reading_the_mask() -> None:
    calls = []
    probe = [nn.Identity(), nn.Identity(), nn.Identity()]
    for index, module in enumerate(probe):
        module.register_forward_hook(lambda m, a, o, index=index: calls.append(index))
    choice = LayerChoice(probe, key="probe")
    choice.set_mask(torch.tensor([0.2, 0.3, 0.5]), active=[2, 0])
    assert choice.active == [0, 2]
    assert choice(torch.tensor(10.0)).item() == pytest.approx(10.0 * 0.2 + 10.0 * 0.5)
    assert calls == [0, 2]
