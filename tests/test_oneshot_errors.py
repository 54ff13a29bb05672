"""One-shot trainers fail fast and clearly: wrong arguments (NNI's names among them), a metric the
search reads but ``metrics`` does not return, and data that yields no batch; and a loader whose
iterator is itself (NNI's DALI wrapper) loses no training batch."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas import LayerChoice
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
from trials.nas.oneshot.arguments import TrainerArgumentError
from trials.nas.oneshot.base import MissingMetricError
from trials.nas.oneshot.lookahead import EmptyDataError

ALGORITHMS = ("darts", "enas", "spos", "pdarts", "cdarts", "proxyless")
CLASSES = {
    "darts": DartsTrainer,
    "enas": EnasTrainer,
    "spos": SposTrainer,
    "pdarts": PdartsTrainer,
    "cdarts": CdartsTrainer,
    "proxyless": ProxylessTrainer,
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Net(nn.Module):
    """Flat inputs, one layer choice and a BatchNorm: a search costs milliseconds."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.op = LayerChoice(OrderedDict(wide=nn.Linear(8, 8), act=nn.ReLU()), key="op")
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.op(self.norm(self.inp(x))))


def batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(n)]


class SelfIterating:
    """Like NNI's DALI wrapper: its iterator is itself, and it restarts after each pass."""

    def __init__(self, items: list[Any]) -> None:
        self.items, self.position = items, 0

    def __iter__(self) -> SelfIterating:
        return self

    def __next__(self) -> Any:
        if self.position == len(self.items):
            self.position = 0
            raise StopIteration
        self.position += 1
        return self.items[self.position - 1]


def generator_of(items: list[Any]) -> Iterator[Any]:
    yield from items


def top1(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"top1": (output.argmax(dim=1) == target).float().mean().item()}


def make(algorithm: str, **kwargs: Any) -> OneShotTrainer:
    """A tiny trainer of ``algorithm``; ``kwargs`` override the shared arguments."""
    torch.manual_seed(0)
    model = Net()
    common: dict[str, Any] = {
        "train_data": batches(),
        "valid_data": batches(2),
        "num_epochs": 2,
        "progress": False,
        "seed": 0,
        **kwargs,
    }
    if algorithm == "darts":
        return DartsTrainer(model, **common)
    if algorithm == "enas":
        return EnasTrainer(model, controller_steps=2, controller_aggregate=1, export_samples=1, **common)
    if algorithm == "spos":
        return SposTrainer(model, population_size=2, generations=0, parents=1, bn_batches=1, **common)
    if algorithm == "pdarts":
        epochs = common.pop("num_epochs")
        return PdartsTrainer(
            lambda depth: model,
            depths=(1,),
            epochs_per_stage=epochs,
            warmup_epochs=0,
            num_to_drop=(),
            skip_dropout=(0.1,),
            **common,
        )
    if algorithm == "cdarts":
        return CdartsTrainer(model, Net(), warmup_epochs=1, **common)
    return ProxylessTrainer(model, **common)


class StepsPerEpoch(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.epochs_begun = 0

    def on_epoch_begin(self, trainer: OneShotTrainer, epoch: int) -> None:
        self.epochs_begun += 1

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Any) -> None:
        self.steps.append(trainer.step - sum(self.steps))


# -- arguments --------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nni_argument_names_are_refused_with_the_nasctl_spelling(algorithm: str) -> None:
    with pytest.raises(TrainerArgumentError) as error:
        make(algorithm, dataset_valid=batches(), log_frequency=5)
    message = str(error.value)
    assert message.startswith(f"{CLASSES[algorithm].__name__}: unknown arguments ")
    assert "dataset_valid (nasctl: valid_data, a DataLoader or any re-iterable of batches)" in message
    assert "log_frequency (nasctl: log_every" in message
    assert "or use the NNI-compatible trainer trials.nas.nni." in message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_unknown_argument_is_named_in_one_error(algorithm: str) -> None:
    with pytest.raises(TypeError, match=r"unknown arguments num_epoch .*, sed \(did you mean seed\?\)"):
        make(algorithm, num_epoch=3, sed=1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_misspelt_argument_gets_a_did_you_mean(algorithm: str) -> None:
    with pytest.raises(TypeError, match=r"log_evry \(did you mean log_every\?\)$"):
        make(algorithm, log_evry=5)


def test_an_algorithm_argument_misspelt_gets_the_algorithm_spelling() -> None:
    with pytest.raises(
        TypeError, match=r"EnasTrainer: unknown arguments controler_steps \(did you mean controller_steps\?\)"
    ):
        make("enas", controler_steps=3)


def test_a_misspelt_nni_name_gets_the_nasctl_spelling() -> None:
    with pytest.raises(TypeError, match=r"arc_learnin_rate \(did you mean arch_lr\?\)"):
        make("darts", arc_learnin_rate=1e-3)


def test_an_nni_name_this_trainer_has_no_equivalent_of_says_so() -> None:
    with pytest.raises(
        TypeError,
        match="mutator_lr \\(NNI's name of nasctl's controller_lr, which DartsTrainer does not take\\)",
    ):
        make("darts", mutator_lr=1e-3)


def test_nni_names_without_an_equivalent_say_what_to_do_instead() -> None:
    with pytest.raises(TypeError) as error:
        make("enas", batch_size=64, workers=4, mutator=None, child_steps=500, reward_function=None)
    message = str(error.value)
    assert "batch_size (NNI's; nasctl: build DataLoaders and pass train_data/valid_data)" in message
    assert "workers (NNI's; nasctl: build DataLoaders" in message
    assert "mutator (NNI's; nasctl: none, nasctl trainers build their own sampler)" in message
    assert "child_steps (NNI's; nasctl: none, one epoch is one pass over train_data)" in message
    assert "reward_function (nasctl: reward, a metric name of `metrics`)" in message
    assert message.endswith("trials.nas.nni.enas.EnasTrainer, which takes NNI's arguments and order")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_extra_positional_arguments_are_refused_as_keyword_only(algorithm: str) -> None:
    cls = CLASSES[algorithm]
    first = (lambda depth: Net()) if algorithm == "pdarts" else Net()
    extra = (Net(),) if algorithm == "cdarts" else ()
    with pytest.raises(TypeError) as error:
        cls(first, *extra, nn.CrossEntropyLoss(), train_data=batches(), valid_data=batches(), num_epochs=1)
    message = str(error.value)
    assert message.startswith(f"{cls.__name__}: {2 + len(extra)} positional arguments")
    assert "every other argument is keyword-only" in message
    assert "NNI-compatible trainer trials.nas.nni." in message


def test_a_subclass_argument_is_accepted_and_suggested_without_code_of_its_own() -> None:
    class Tuned(DartsTrainer):
        def __init__(self, model: nn.Module, *, temperature: float = 1.0, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self.temperature = temperature

    common = {"train_data": batches(), "valid_data": batches(), "num_epochs": 1}
    assert Tuned(Net(), temperature=2.0, arch_lr=0.1, **common).temperature == 2.0
    with pytest.raises(
        TypeError, match=r"^Tuned: unknown arguments temprature \(did you mean temperature\?\)$"
    ):
        Tuned(Net(), temprature=2.0, **common)


def test_arguments_are_refused_before_the_trainer_builds_anything() -> None:
    built: list[int] = []
    with pytest.raises(TypeError, match="PdartsTrainer: unknown arguments depth "):
        PdartsTrainer(lambda depth: built.append(depth) or Net(), depth=(1,), train_data=batches())
    assert built == []


# -- the metric the search reads ------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["enas", "spos"])
def test_a_reward_metrics_does_not_return_is_refused_before_training(algorithm: str) -> None:
    counter = StepsPerEpoch()
    trainer = make(algorithm, metrics=top1, callbacks=[counter])
    with pytest.raises(MissingMetricError) as error:
        trainer.fit()
    message = str(error.value)
    assert message.startswith(f"{type(trainer).__name__}: the search reads the metric 'acc'")
    assert "returned only 'loss', 'top1'" in message
    assert (trainer.step, counter.epochs_begun) == (0, 0)


@pytest.mark.parametrize("algorithm", ["enas", "spos"])
def test_a_reward_that_metrics_returns_trains(algorithm: str) -> None:
    trainer = make(algorithm, metrics=top1, reward="top1", num_epochs=1)
    assert trainer.required_metrics() == ("top1",)
    trainer.fit()
    assert trainer.step == 4


def test_the_reward_is_checked_when_a_search_resumes(tmp_path: Any) -> None:
    make("enas", num_epochs=1, log_dir=tmp_path).fit()
    resumed = make("enas", num_epochs=2, log_dir=tmp_path, resume=True, metrics=top1)
    with pytest.raises(MissingMetricError, match="'acc'"):
        resumed.fit()


@pytest.mark.parametrize("algorithm", ["darts", "cdarts", "proxyless"])
def test_trainers_that_read_no_metric_take_any_metrics(algorithm: str) -> None:
    trainer = make(algorithm, metrics=lambda output, target: {}, num_epochs=1)
    assert trainer.required_metrics() == ()
    trainer.fit()


@pytest.mark.parametrize("algorithm", ["enas", "spos"])
def test_the_metric_check_leaves_generators_statistics_and_modes_as_they_were(algorithm: str) -> None:
    class Compare(Callback):
        def on_search_begin(self, trainer: OneShotTrainer) -> None:
            self.after = snapshot(trainer)

    def snapshot(trainer: OneShotTrainer) -> tuple[Any, ...]:
        buffers = [b.clone() for b in trainer.model.buffers()]
        modes = [m.training for m in trainer.model.modules()]
        return torch.get_rng_state(), trainer.rng.getstate(), buffers, modes

    compare = Compare()
    trainer = make(
        algorithm,
        valid_data=DataLoader(
            TensorDataset(torch.randn(12, 4), torch.randint(0, 3, (12,))), batch_size=6, shuffle=True
        ),
        callbacks=[compare],
    )
    trainer.model.norm.eval()  # a mode of the user's own, kept too
    before = snapshot(trainer)
    trainer.fit()
    assert torch.equal(compare.after[0], before[0])
    assert compare.after[1] == before[1]
    assert all(torch.equal(a, b) for a, b in zip(compare.after[2], before[2], strict=True))
    assert compare.after[3] == before[3]


# -- loaders that iterate themselves, and data that yields nothing ----------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_self_iterating_loader_loses_no_training_batch(algorithm: str, tmp_path: Any) -> None:
    counts = []
    for train, valid in ((batches(), batches(2)), (SelfIterating(batches()), SelfIterating(batches(2)))):
        counter = StepsPerEpoch()
        # a search log: the graph is traced from a training batch before the first epoch
        make(
            algorithm,
            train_data=train,
            valid_data=valid,
            log_dir=tmp_path / str(len(counts)),
            callbacks=[counter],
        ).fit()
        counts.append(counter.steps)
    assert counts[1] == counts[0]
    assert counts[0][0] >= 4


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_one_pass_generator_is_refused_at_the_second_epoch(algorithm: str, tmp_path: Any) -> None:
    counter = StepsPerEpoch()
    trainer = make(algorithm, train_data=generator_of(batches()), log_dir=tmp_path, callbacks=[counter])
    with pytest.raises(EmptyDataError) as error:
        trainer.fit()
    message = str(error.value)
    assert message.startswith(f"{type(trainer).__name__}: epoch 1: train_data yielded no batch")
    assert "a one-pass iterator (a generator)" in message
    assert "pass a DataLoader or a list" in message
    assert counter.steps == [4]  # the first epoch had every batch, the traced one included


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_validation_data_is_refused_by_name(algorithm: str) -> None:
    trainer = make(algorithm, valid_data=[])
    with pytest.raises(
        EmptyDataError, match=f"^{type(trainer).__name__}: valid_data yielded no batch; .*\\(a generator\\)"
    ):
        trainer.fit()


def test_evaluating_empty_data_is_refused_by_name() -> None:
    trainer = make("darts")
    with pytest.raises(EmptyDataError, match="^DartsTrainer: train_data yielded no batch"):
        trainer.train_data = generator_of([])
        trainer.evaluate(trainer.train_data)
    with pytest.raises(
        EmptyDataError, match=r"^DartsTrainer: the data given to evaluate\(\) yielded no batch"
    ):
        trainer.evaluate([])
