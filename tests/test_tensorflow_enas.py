"""ENAS on a Keras model: it searches, exports an architecture of the space that applies to the
model, and leaves a search log that view-nas reads."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from manager.views.searchlog import SearchLog
from trials.nas.tensorflow import InputChoice, LayerChoice, apply_fixed_architecture, dump_search_space
from trials.nas.tensorflow._keras import keras
from trials.nas.tensorflow.enas import EnasTrainer

L = keras.layers


class TinyNet(keras.Model):
    """Two layer choices and a skip: the shapes of the digits example, at a few hundred weights."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = L.Dense(8, activation="relu")
        self.op = LayerChoice({"wide": L.Dense(8, activation="relu"), "identity": L.Identity()}, key="op")
        self.skip = InputChoice(choose_from=["op"], n_chosen=None, key="skip")
        self.head = LayerChoice({"linear": L.Dense(3), "deep": keras.Sequential([L.Dense(8), L.Dense(3)])})

    def call(self, x):
        h = self.op(self.stem(x))
        extra = self.skip([h])
        return self.head(h if extra is None else h + extra)


def _batches(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, n, 16)]


def test_enas_searches_a_keras_model_and_exports_an_architecture_it_applies(tmp_path) -> None:
    trainer = EnasTrainer(
        TinyNet(),
        train_data=_batches(0, 64),
        valid_data=_batches(1, 32),
        num_epochs=2,
        controller_steps=4,
        controller_aggregate=2,
        export_samples=2,
        log_every=2,
        log_dir=tmp_path / "log",
        seed=0,
    )
    exported = trainer.fit()

    assert set(exported) == {"op", "skip", "LayerChoice1"}
    fresh = TinyNet()
    assert apply_fixed_architecture(fresh, exported) == exported
    assert fresh(np.zeros((1, 4), "float32")).shape == (1, 3)
    # the controller learned from its rewards: 4 samples in updates of 2, each of the 2 epochs
    assert trainer.controller_optimizer.iterations.numpy() == 2 * 2

    view = SearchLog(tmp_path / "log").view()
    assert view["finished"] and view["problems"] == [] and view["architecture"] == exported
    assert view["searchSpace"] == dump_search_space(fresh)
    assert view["weights"]["total"] == 4 and set(view["weights"]["items"][0]["weights"]) == set(exported)
    epoch_ends = [m for m in view["metrics"]["items"] if "val_acc" in m.get("metrics", m)]
    assert len(epoch_ends) == 2


def test_enas_shows_one_progress_line_per_epoch_and_none_when_asked(capsys) -> None:
    def search(progress: bool) -> list[str]:
        EnasTrainer(
            TinyNet(),
            train_data=_batches(0, 32),
            valid_data=_batches(1, 16),
            num_epochs=2,
            controller_steps=2,
            controller_aggregate=2,
            export_samples=1,
            seed=0,
            progress=progress,
        ).fit()
        return capsys.readouterr().err.splitlines()

    lines = search(progress=True)
    assert lines[0].startswith("[enas] searching 3 choices for 2 epochs")
    assert [line.split("  ")[0] for line in lines[1:]] == ["epoch 1/2", "epoch 2/2"]
    assert "val_acc" in lines[1] and "(val: super-net)" in lines[1]
    assert search(progress=False) == []
