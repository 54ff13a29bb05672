"""TensorBoardCallback on every one-shot trainer, read back with TensorBoard's own reader.

Each trainer searches the digits example's ``DigitsNet`` for three epochs of six steps, logging
every four steps, so one epoch ends on a logging step (12) and two do not (6, 18). A trainer
joins every parametrised test with one line in ``TRAINERS``.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from nas_models import digits_net, flops_table
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

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
from trials.nas.oneshot.tensorboard import MISSING_TENSORBOARD, TensorBoardCallback

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
LOG_EVERY = 4
STEPS_PER_EPOCH = 6

#: algorithm -> how to build its trainer for a short search (arguments beyond the shared ones).
TRAINERS: dict[str, Callable[..., OneShotTrainer]] = {
    "darts": lambda model, **common: DartsTrainer(model, arch_lr=0.01, **common),
    "enas": lambda model, **common: EnasTrainer(
        model, controller_lr=0.01, controller_steps=4, controller_aggregate=2, export_samples=2, **common
    ),
    "spos": lambda model, **common: SposTrainer(
        model, population_size=4, generations=1, parents=2, bn_batches=1, eval_batches=1, **common
    ),
    "pdarts": lambda model, **common: pdarts(model, **common),
    "cdarts": lambda model, **common: CdartsTrainer(
        model, digits_net(), warmup_epochs=1, arch_lr=0.01, **common
    ),
    "proxyless": lambda model, **common: ProxylessTrainer(
        model, latency_table=flops_table(model), arch_lr=0.01, **common
    ),
}


def pdarts(
    model: nn.Module, num_epochs: int, optimizer: torch.optim.Optimizer, **common: Any
) -> PdartsTrainer:
    """Three one-epoch stages of the digits model (its depth never changes), a candidate dropped after each."""
    assert num_epochs == 3
    rebuilt = iter([model])
    return PdartsTrainer(
        lambda depth: next(rebuilt, None) or digits_net(),
        depths=(1, 1, 1),
        epochs_per_stage=1,
        warmup_epochs=0,
        num_to_drop=(1, 1),
        optimizer_factory=lambda params: torch.optim.Adam(params, lr=0.01),
        arch_lr=0.01,
        **common,
    )


ALGORITHMS = tuple(TRAINERS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


@functools.cache
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    digits_net()  # puts examples/digits on sys.path
    from data import load_splits

    splits = load_splits()
    return (*splits["train"], *splits["val"])


def make_trainer(
    algorithm: str, log_dir: Path | None, callbacks: list[Callback], **kwargs: Any
) -> OneShotTrainer:
    torch.manual_seed(0)
    model: nn.Module = digits_net(skip=algorithm != "proxyless")  # ProxylessNAS: layer choices only
    x, y, xv, yv = digits()
    batch = 32
    train = DataLoader(
        TensorDataset(x[: batch * STEPS_PER_EPOCH], y[: batch * STEPS_PER_EPOCH]), batch, shuffle=True
    )
    valid = DataLoader(TensorDataset(xv[:64], yv[:64]), batch_size=32, shuffle=True)
    common = {
        "train_data": train,
        "valid_data": valid,
        "num_epochs": EPOCHS,
        "optimizer": torch.optim.Adam(model.parameters(), lr=0.01),
        "log_dir": log_dir,
        "log_every": LOG_EVERY,
        "seed": 0,
        "progress": False,
        "callbacks": callbacks,
        **kwargs,
    }
    return TRAINERS[algorithm](model, **common)


class Recorder(Callback):
    """Keeps every step's metrics and epoch summary; raises at ``crash_at`` to simulate a crash."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.steps: dict[int, dict[str, float]] = {}
        self.epochs: list[dict[str, float]] = []
        self.epoch_end_steps: list[int] = []
        self.round_steps: list[int] = []  # SPOS' generations
        self.rounds: list[dict[str, float]] = []
        self.crash_at = crash_at

    def on_step_end(self, trainer: OneShotTrainer, step: int, metrics: Mapping[str, float]) -> None:
        self.steps[step] = dict(metrics)
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated crash")

    def on_epoch_end(self, trainer: OneShotTrainer, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs.append(dict(metrics))
        self.epoch_end_steps.append(trainer.step)

    def on_search_round(
        self, trainer: OneShotTrainer, step: int, round: int, rounds: int, metrics: Mapping[str, float]
    ) -> None:
        self.round_steps.append(step)
        self.rounds.append(dict(metrics))


Scalars = dict[str, list[tuple[int, float]]]


def read_scalars(folder: Path) -> Scalars:
    """tag -> [(step, value)] as TensorBoard shows them (every event file, purges applied)."""
    reader = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def lines(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


class Search:
    """One finished search with a default TensorBoardCallback, and what it wrote."""

    def __init__(self, algorithm: str, log_dir: Path) -> None:
        self.recorder = Recorder()
        self.callback = TensorBoardCallback()
        self.trainer = make_trainer(algorithm, log_dir, [self.callback, self.recorder])
        self.trainer.fit()
        self.log_dir = log_dir
        self.scalars = read_scalars(log_dir / "tensorboard")

    def tags(self, prefix: str) -> Scalars:
        return {tag: events for tag, events in self.scalars.items() if tag.startswith(prefix)}


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Search]:
    return {a: Search(a, tmp_path_factory.mktemp(f"{a}-log")) for a in ALGORITHMS}


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-6, abs=1e-7)  # TensorBoard keeps float32


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_step_metrics_are_written_every_log_every_steps(searches: dict[str, Search], algorithm: str) -> None:
    search = searches[algorithm]
    logged = [step for step in search.recorder.steps if step % LOG_EVERY == 0]
    tags = search.tags("step/")
    names = {name for step in logged for name in search.recorder.steps[step]}  # CDARTS' steps differ
    assert set(tags) == {f"step/{name}" for name in names} >= {"step/loss", "step/acc"}
    for tag, events in tags.items():
        name = tag.removeprefix("step/")
        steps = [step for step in logged if name in search.recorder.steps[step]]
        assert [step for step, _ in events] == steps
        assert [value for _, value in events] == [approx(search.recorder.steps[s][name]) for s in steps]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_epoch_metrics_are_written_per_epoch_with_validation(
    searches: dict[str, Search], algorithm: str
) -> None:
    search = searches[algorithm]
    tags = search.tags("epoch/")
    assert {"epoch/train_loss", "epoch/train_acc", "epoch/val_loss", "epoch/val_acc", "epoch/train_s"} <= set(
        tags
    )
    epochs = search.recorder.epochs
    assert set(tags) == {
        f"epoch/{name}" for summary in epochs for name in summary
    }  # CDARTS' warm-up has fewer
    for tag, events in tags.items():
        name = tag.removeprefix("epoch/")
        assert events == [
            (epoch, approx(summary[name])) for epoch, summary in enumerate(epochs) if name in summary
        ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_candidate_weight_equals_the_weights_jsonl_line_of_its_step(
    searches: dict[str, Search], algorithm: str
) -> None:
    search = searches[algorithm]
    jsonl = {line["step"]: line["weights"] for line in lines(search.log_dir, "weights.jsonl")}
    expected_steps = list(jsonl)  # SPOS' evolution included (a line per generation)
    logging_steps = {step for step in search.recorder.steps if step % LOG_EVERY == 0}
    every_end = set(search.recorder.epoch_end_steps) | set(search.recorder.round_steps)
    assert expected_steps == sorted(logging_steps | every_end)
    tags = search.tags("weights/")
    choices = search.trainer.space.nas_choices  # every candidate, also those P-DARTS dropped
    assert set(tags) == {f"weights/{choice.key}/{name}" for choice in choices for name in choice.candidates}
    for group in choices:
        for index, name in enumerate(group.candidates):
            events = tags[f"weights/{group.key}/{name}"]
            assert [step for step, _ in events] == expected_steps
            assert [value for _, value in events] == [
                approx(jsonl[s][group.key][index]) for s in expected_steps
            ]


def test_each_generation_of_spos_evolution_is_written_with_its_search_metrics(
    searches: dict[str, Search],
) -> None:
    search = searches["spos"]
    metrics = [
        line for line in lines(search.log_dir, "metrics.jsonl") if "search_best_acc" in line["metrics"]
    ]
    assert len(metrics) == len(search.recorder.rounds) == 2  # generations=1: the first and one more
    for name in ("search_best_acc", "search_mean_acc"):
        assert search.tags("search/")[f"search/{name}"] == [
            (line["step"], approx(line["metrics"][name])) for line in metrics
        ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_callback_leaves_the_search_log_as_it_is_without_it(
    searches: dict[str, Search], algorithm: str, tmp_path: Path
) -> None:
    make_trainer(algorithm, tmp_path, []).fit()
    for name in ("weights.jsonl", "metrics.jsonl", "architecture.json"):
        assert (tmp_path / name).read_text() == (searches[algorithm].log_dir / name).read_text()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_default_folder_is_inside_the_search_log(searches: dict[str, Search], algorithm: str) -> None:
    search = searches[algorithm]
    assert search.callback.directory == search.log_dir / "tensorboard"
    assert list(search.callback.directory.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_after_a_crash_shows_every_step_once(
    searches: dict[str, Search], algorithm: str, tmp_path: Path
) -> None:
    crashed = TensorBoardCallback()
    with pytest.raises(KeyboardInterrupt):  # in epoch 3, after its steps 13-16 were written
        make_trainer(algorithm, tmp_path, [crashed, Recorder(crash_at=16)]).fit()
    crashed.close()  # what the crashed run wrote after its checkpoint (step 12) reaches the disk
    assert 16 in [step for step, _ in read_scalars(tmp_path / "tensorboard")["step/loss"]]

    make_trainer(algorithm, tmp_path, [TensorBoardCallback()], resume=True).fit()
    resumed = read_scalars(tmp_path / "tensorboard")
    straight = searches[algorithm].scalars
    assert set(resumed) == set(straight)
    for tag, events in resumed.items():
        assert [step for step, _ in events] == [step for step, _ in straight[tag]], tag
        if tag not in ("epoch/train_s", "epoch/val_s"):
            assert [value for _, value in events] == [approx(value) for _, value in straight[tag]], tag


def test_every_and_log_dir_choose_the_steps_and_the_folder(tmp_path: Path) -> None:
    callback = TensorBoardCallback(log_dir=tmp_path / "tb", every=5)
    make_trainer("darts", None, [callback]).fit()
    scalars = read_scalars(tmp_path / "tb")
    assert [step for step, _ in scalars["step/loss"]] == [5, 10, 15]
    assert [step for step, _ in scalars["weights/conv1/conv3x3"]] == [5, 6, 10, 12, 15, 18]


def test_without_a_search_log_the_default_folder_is_a_new_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    callback = TensorBoardCallback()
    make_trainer("darts", None, [callback], num_epochs=1).fit()
    assert callback.directory is not None and callback.directory.parent == Path("runs")
    assert callback.directory.name.startswith("DARTS-") and len(callback.directory.name) == len(
        "DARTS-20250101-120000"
    )
    assert read_scalars(tmp_path / callback.directory)["epoch/val_acc"][0][0] == 0


def test_a_fresh_search_hides_what_an_earlier_run_left_in_the_folder(tmp_path: Path) -> None:
    for _ in range(2):
        make_trainer("darts", tmp_path, [TensorBoardCallback()], num_epochs=1).fit()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert [step for step, _ in read_scalars(tmp_path / "tensorboard")["step/loss"]] == [4]


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_missing_tensorboard_is_one_line_that_says_how_to_install_it() -> None:
    done = python(
        "import sys\n"
        "sys.modules['tensorboard'] = sys.modules['torch.utils.tensorboard'] = None\n"
        "from trials.nas.oneshot.tensorboard import TensorBoardCallback\n"
        "TensorBoardCallback()\n"
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"ModuleNotFoundError: {MISSING_TENSORBOARD}"
    assert "During handling" not in done.stderr
    assert MISSING_TENSORBOARD == "TensorBoardCallback needs TensorBoard: pip install 'nasctl[tensorboard]'"


def test_importing_the_one_shot_package_does_not_import_tensorboard() -> None:
    done = python(
        "import sys\n"
        "import trials.nas.oneshot, trials.nas.oneshot.tensorboard\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorboard' or 'utils.tensorboard' in m))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
