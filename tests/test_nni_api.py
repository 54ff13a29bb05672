"""NNI v1.9's one-shot API under ``trials.nas.nni``: names, argument order, defaults, behaviour.

End-to-end ports of NNI-style scripts are in ``test_nni_port.py``; these check the surface
piece by piece on a tiny model.
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas.nni import InputChoice, LayerChoice, enas, mutables, spos
from trials.nas.nni.callbacks import ArchitectureCheckpoint, Callback, LRSchedulerCallback, ModelCheckpoint
from trials.nas.nni.darts import DartsTrainer
from trials.nas.nni.fixed import apply_fixed_architecture
from trials.nas.nni.trainer import FixedSteps
from trials.nas.nni.utils import AverageMeter, AverageMeterGroup, to_device

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.op = LayerChoice(OrderedDict(k1=nn.Conv2d(4, 4, 1), k3=nn.Conv2d(4, 4, 3, padding=1)), key="op")
        self.skip = InputChoice(choose_from=["op"], n_chosen=None, key="skip")
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.stem(x))
        b = self.op(a)
        extra = self.skip([b])
        return self.head((b if extra is None else b + extra).mean(dim=(2, 3)))


def dataset(n: int, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"acc1": (output.argmax(1) == target).float().mean().item()}


def darts(model: nn.Module | None = None, **kwargs) -> DartsTrainer:
    model = model or Net()
    defaults = {"batch_size": 8, "workers": 0, "device": "cpu", "progress": False}
    return DartsTrainer(
        model, nn.CrossEntropyLoss(), metrics, torch.optim.SGD(model.parameters(), 0.05), 2,
        dataset(33), dataset(16, 1), **{**defaults, **kwargs},
    )  # fmt: skip


# -- signatures ------------------------------------------------------------------------------------

NNI_ORDER = {
    DartsTrainer: "model loss metrics optimizer num_epochs dataset_train dataset_valid mutator batch_size "
    "workers device log_frequency callbacks arc_learning_rate unrolled",
    enas.EnasTrainer: "model loss metrics reward_function optimizer num_epochs dataset_train dataset_valid "
    "mutator batch_size workers device log_frequency callbacks entropy_weight skip_weight baseline_decay "
    "child_steps mutator_lr mutator_steps_aggregate mutator_steps aux_weight test_arc_per_epoch",
    spos.SPOSSupernetTrainer: "model loss metrics optimizer num_epochs train_loader valid_loader mutator "
    "batch_size workers device log_frequency callbacks",
    enas.EnasMutator: "model lstm_size lstm_num_layers tanh_constant cell_exit_extra_step skip_target "
    "temperature branch_bias entropy_reduction",
    spos.SPOSSupernetTrainingMutator: "model flops_func flops_lb flops_ub flops_bin_num flops_sample_timeout",
}


@pytest.mark.parametrize("cls", list(NNI_ORDER), ids=lambda cls: cls.__name__)
def test_arguments_come_in_nni_order(cls: type) -> None:
    names = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert names == NNI_ORDER[cls].split()


def test_nni_defaults() -> None:
    def defaults(cls: type) -> dict:
        return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()}

    assert (
        defaults(DartsTrainer)["arc_learning_rate"] == 3.0e-4 and defaults(DartsTrainer)["batch_size"] == 64
    )
    e = defaults(enas.EnasTrainer)
    assert (e["child_steps"], e["mutator_steps"], e["mutator_steps_aggregate"], e["aux_weight"]) == (
        500,
        50,
        20,
        0.4,
    )
    assert (e["mutator_lr"], e["entropy_weight"], e["skip_weight"]) == (3.5e-4, 1e-4, 0.8)
    assert defaults(spos.SPOSSupernetTrainingMutator)["flops_bin_num"] == 7


def test_input_choice_has_no_key_as_a_class_attribute() -> None:
    assert mutables.InputChoice.NO_KEY == ""


# -- data as NNI split it --------------------------------------------------------------------------


def test_darts_splits_the_training_set_in_halves_and_validates_on_dataset_valid() -> None:
    trainer = darts()
    assert len(trainer.train_loader.sampler) == 16 and len(trainer.valid_loader.sampler) == 17
    assert set(trainer.train_loader.sampler.indices).isdisjoint(trainer.valid_loader.sampler.indices)
    assert len(trainer.test_loader.dataset) == 16


def test_enas_keeps_the_last_tenth_for_the_controller_and_trains_child_steps_per_epoch() -> None:
    model = Net()
    trainer = enas.EnasTrainer(
        model, nn.CrossEntropyLoss(), metrics, lambda out, y: metrics(out, y)["acc1"],
        torch.optim.SGD(model.parameters(), 0.05), 1, dataset(40), dataset(8, 1),
        batch_size=4, workers=0, device="cpu", child_steps=3, progress=False,
    )  # fmt: skip
    assert len(trainer.valid_loader.sampler) == 4 and list(trainer.valid_loader.sampler.indices) == [
        36,
        37,
        38,
        39,
    ]
    assert len(list(trainer.train_data)) == 3


def test_fixed_steps_continue_the_loader_across_passes() -> None:
    steps = FixedSteps([1, 2, 3, 4, 5], 2)
    assert [list(steps) for _ in range(3)] == [[1, 2], [3, 4], [5, 1]]


def test_a_loader_given_as_dataset_train_is_refused_with_the_nasctl_spelling() -> None:
    model = Net()
    with pytest.raises(TypeError, match="dataset_train must be a torch Dataset.*train_data="):
        DartsTrainer(
            model, nn.CrossEntropyLoss(), metrics, torch.optim.SGD(model.parameters(), 0.05), 1,
            DataLoader(dataset(8)), dataset(8), workers=0,
        )  # fmt: skip


def test_nasctl_loaders_may_replace_the_datasets() -> None:
    model = Net()
    loader = DataLoader(dataset(8), batch_size=4)
    trainer = DartsTrainer(
        model, nn.CrossEntropyLoss(), metrics, torch.optim.SGD(model.parameters(), 0.05), 1,
        train_data=loader, valid_data=loader, device="cpu", progress=False,
    )  # fmt: skip
    assert trainer.train_loader is loader and trainer.test_loader is loader
    trainer.train()


# -- methods and callbacks -------------------------------------------------------------------------


class Counting(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.events.append(("begin", epoch))

    def on_epoch_end(self, epoch: int) -> None:
        self.events.append(("end", epoch))


def test_callbacks_are_built_with_model_mutator_and_trainer_and_hear_each_epoch() -> None:
    counting = Counting()
    trainer = darts(callbacks=[counting])
    assert (
        counting.model is trainer.model
        and counting.trainer is trainer
        and counting.mutator is trainer.mutator
    )
    trainer.train()
    assert counting.events == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


def test_nasctl_callbacks_in_an_nni_trainer_are_refused_by_name() -> None:
    from trials.nas.oneshot import Callback as NasctlCallback

    with pytest.raises(TypeError, match="trials.nas.nni.callbacks.Callback"):
        darts(callbacks=[NasctlCallback()])


def test_architecture_checkpoint_writes_nni_multi_hot_per_epoch_that_applies(tmp_path: Path) -> None:
    darts(callbacks=[ArchitectureCheckpoint(tmp_path)]).train()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["epoch_0.json", "epoch_1.json"]
    arch = json.loads((tmp_path / "epoch_1.json").read_text())
    assert set(arch) == {"op", "skip"} and len(arch["op"]) == 2 and sum(arch["op"]) == 1
    model = Net()
    apply_fixed_architecture(model, tmp_path / "epoch_1.json", verbose=False)
    assert model(torch.zeros(1, 1, 6, 6)).shape == (1, 3)


def test_model_checkpoint_saves_a_plain_state_dict(tmp_path: Path) -> None:
    trainer = darts(callbacks=[ModelCheckpoint(tmp_path)])
    trainer.train()
    state = torch.load(tmp_path / "epoch_1.pth.tar")
    assert set(state) == set(trainer.model.state_dict())
    Net().load_state_dict(state)


def test_lr_scheduler_callback_steps_once_per_epoch() -> None:
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    trainer = DartsTrainer(
        model, nn.CrossEntropyLoss(), metrics, optimizer, 2, dataset(16), dataset(8),
        batch_size=8, workers=0, device="cpu", callbacks=[LRSchedulerCallback(scheduler)], progress=False,
    )  # fmt: skip
    trainer.train()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    with pytest.raises(ValueError, match="mode must be 'epoch'"):
        LRSchedulerCallback(scheduler, mode="step")


def test_train_without_validation_reports_no_val_metrics(tmp_path: Path) -> None:
    trainer = darts(log_dir=tmp_path)
    trainer.train(validate=False)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert not any("val_acc1" in line["metrics"] for line in lines)
    assert "val_acc1" in trainer.validate()


def test_export_to_a_file_writes_multi_hot_and_returns_the_full_form(tmp_path: Path) -> None:
    trainer = darts()
    trainer.train()
    full = trainer.export(tmp_path / "arch.json")
    assert full["op"]["_value"] in ("k1", "k3")
    hot = json.loads((tmp_path / "arch.json").read_text())
    assert hot["op"] == [full["op"]["_value"] == "k1", full["op"]["_value"] == "k3"]
    assert trainer.mutator.export() == hot


def test_enable_visualization_keeps_a_search_log_for_view_nas(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    trainer = darts()
    folder = trainer.enable_visualization()
    trainer.train()
    assert folder.parent == Path("logs") and (tmp_path / folder / "architecture.json").exists()
    trainer.checkpoint()
    assert (tmp_path / folder / "checkpoint.pt").exists()


def test_checkpoint_without_a_folder_says_how_to_get_one() -> None:
    with pytest.raises(ValueError, match="enable_visualization"):
        darts().checkpoint()


# -- mutators --------------------------------------------------------------------------------------


def test_enas_mutator_settings_reach_the_controller() -> None:
    model = Net()
    mutator = enas.EnasMutator(model, lstm_size=32, tanh_constant=1.1)
    trainer = enas.EnasTrainer(
        model, nn.CrossEntropyLoss(), metrics, lambda out, y: 0.5, torch.optim.SGD(model.parameters(), 0.05),
        1, dataset(20), dataset(8), mutator=mutator, workers=0, device="cpu", progress=False,
    )  # fmt: skip
    assert trainer.controller.hidden == 32 and trainer.controller.tanh_constant == 1.1


@pytest.mark.parametrize("kwargs", [{"lstm_num_layers": 2}, {"entropy_reduction": "mean"}])
def test_enas_mutator_refuses_what_nasctl_controller_lacks_by_name(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        enas.EnasMutator(Net(), **kwargs)


def test_a_mutator_built_for_another_model_is_refused() -> None:
    with pytest.raises(ValueError, match="another model"):
        darts(mutator=__import__("trials.nas.nni.darts", fromlist=["DartsMutator"]).DartsMutator(Net()))


def test_spos_flops_func_receives_nni_one_hot_candidates() -> None:
    seen = []

    def flops(candidate: dict) -> float:
        seen.append(candidate)
        return 10.0

    model = Net()
    mutator = spos.SPOSSupernetTrainingMutator(model, flops_func=flops, flops_lb=5, flops_ub=15)
    fn = mutator.sampler_arguments()["flops_fn"]
    assert fn({"op": [1], "skip": [0]}) == 10.0
    assert seen[0]["op"].tolist() == [False, True] and seen[0]["op"].dtype == torch.bool


# -- utils -----------------------------------------------------------------------------------------


def test_average_meter_and_group_as_nni_scripts_read_them() -> None:
    meter = AverageMeter("loss")
    meter.update(1.0, n=3)
    meter.update(torch.tensor(3.0))
    assert (meter.avg, meter.sum, meter.count, meter.val) == (1.5, 6.0, 4, 3.0)
    group = AverageMeterGroup()
    group.update({"acc1": 0.5, "loss": 2.0})
    group.update({"acc1": 1.0, "loss": 1.0})
    assert group.acc1.avg == 0.75 and group["loss"].avg == 1.5
    assert "acc1" in str(group) and "loss: 1.5" in group.summary()
    with pytest.raises(AttributeError, match="no meter 'acc5'"):
        _ = group.acc5


def test_to_device_moves_nested_tensors() -> None:
    moved = to_device({"x": [torch.zeros(1), (torch.ones(1), 3)]}, "cpu")
    assert torch.equal(moved["x"][1][0], torch.ones(1)) and moved["x"][1][1] == 3
