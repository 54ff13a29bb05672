"""The Keras model API is the PyTorch one: same keys, same search-space and architecture JSON,
same rules and the same errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from nas_models import DIGITS_DIR

pytest.importorskip("tensorflow")

import trials.nas as torch_nas
import trials.nas.tensorflow as keras_nas
from trials.errors import MutableError
from trials.nas.tensorflow._keras import keras

KERAS_DIGITS = DIGITS_DIR.parent / "digits-keras"
L = keras.layers


def _digits_models() -> tuple[torch.nn.Module, keras.Model]:
    """The PyTorch and the Keras digits examples (each folder has a model.py and a data.py)."""
    models = []
    for folder in (DIGITS_DIR, KERAS_DIGITS):
        for name in ("model", "data"):
            sys.modules.pop(name, None)
        sys.path.insert(0, str(folder))
        try:
            import model

            models.append(model.DigitsNet())
        finally:
            sys.path.remove(str(folder))
            for name in ("model", "data"):
                sys.modules.pop(name, None)
    return models[0], models[1]


def test_the_keras_digits_model_has_the_search_space_json_of_the_pytorch_one() -> None:
    torch_model, keras_model = _digits_models()
    assert keras_nas.dump_search_space(keras_model) == torch_nas.dump_search_space(torch_model)


def test_the_same_architecture_json_applies_to_both_models_and_runs_only_the_chosen_ops() -> None:
    torch_model, keras_model = _digits_models()
    arch = {"conv1": "conv5x5", "conv2": "identity", "skip": ["conv1"], "conv3": "conv1x1"}
    applied = keras_nas.apply_fixed_architecture(keras_model, arch)
    assert applied == torch_nas.apply_fixed_architecture(torch_model, arch)
    assert keras_model(np.zeros((2, 8, 8, 1), "float32")).shape == (2, 10)
    built = {
        key: [bool(op.weights) for op in getattr(keras_model, key).candidates]
        for key in ("conv1", "conv2", "conv3")
    }
    assert built == {  # unused candidates are never called, so they hold no weights (identity has none)
        "conv1": [False, True, False, False],
        "conv2": [False, False, False, False],
        "conv3": [False, False, True],
    }


class _AutoKeys(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.a = keras_nas.LayerChoice([L.Dense(4), L.Dense(4)])
        self.b = keras_nas.InputChoice(n_candidates=2, n_chosen=1)
        self.c = keras_nas.LayerChoice([L.Dense(4), L.Identity()], key="c")


def test_auto_keys_are_numbered_as_in_pytorch_and_final_at_construction() -> None:
    model = _AutoKeys()
    assert (model.a.key, model.b.key) == ("LayerChoice1", "InputChoice2")
    assert keras_nas.parse_model(model).space.keys() == ["LayerChoice1", "InputChoice2", "c"]


def test_a_choice_called_before_an_architecture_is_applied_says_how_to_apply_one() -> None:
    choice = keras_nas.LayerChoice([L.Dense(2)], key="op")
    with pytest.raises(RuntimeError, match="LayerChoice 'op' has no architecture yet: call get_and_apply"):
        choice(np.zeros((1, 3), "float32"))


def test_a_choice_nested_in_a_candidate_is_refused() -> None:
    inner = keras_nas.LayerChoice([L.Dense(2)], key="inner")
    with pytest.raises(MutableError, match="candidate '0' contains LayerChoice 'inner'; nested choices"):
        keras_nas.LayerChoice([inner], key="outer")


def test_choose_from_naming_an_unknown_key_is_refused_with_the_pytorch_message() -> None:
    class Model(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.op = keras_nas.LayerChoice([L.Dense(2)], key="op")
            self.pick = keras_nas.InputChoice(choose_from=["op", "nope"], n_chosen=1, key="pick")

    with pytest.raises(MutableError, match="choose_from names 'nope', which is not the key of a mutable"):
        keras_nas.parse_model(Model())


def test_a_key_shared_by_choices_with_different_candidates_is_refused() -> None:
    class Model(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.one = keras_nas.LayerChoice({"a": L.Dense(2), "b": L.Dense(2)}, key="op")
            self.two = keras_nas.LayerChoice({"a": L.Dense(2), "c": L.Dense(2)}, key="op")

    with pytest.raises(
        MutableError, match="key 'op' is shared by .* mutables sharing a key must have the same"
    ):
        keras_nas.parse_model(Model())


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_candidates": 2, "choose_from": ["a"]}, {"n_candidates": 2, "n_chosen": 3}, {"n_candidates": 0}],
)
def test_bad_input_choice_arguments_give_the_pytorch_error(kwargs: dict) -> None:
    with pytest.raises(MutableError) as torch_error:
        torch_nas.InputChoice(key="x", **kwargs)
    with pytest.raises(MutableError) as keras_error:
        keras_nas.InputChoice(key="x", **kwargs)
    assert str(keras_error.value) == str(torch_error.value)


def test_a_model_of_neither_framework_is_refused_naming_both() -> None:
    with pytest.raises(TypeError, match="torch nn.Module or a Keras layer/model.*got dict"):
        keras_nas.apply_fixed_architecture({}, {})


class _Cell(keras_nas.MutableScope):
    def __init__(self) -> None:
        super().__init__("cell")
        self.op = keras_nas.LayerChoice([L.Dense(2), L.Identity()], key="cell_op")

    def call(self, x):
        return self.op(x)


def test_an_input_choice_may_choose_from_a_scope_and_a_keyless_input() -> None:
    class Model(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.cell = _Cell()
            self.pick = keras_nas.InputChoice(choose_from=["cell", ""], n_chosen=1, key="pick")

    assert keras_nas.dump_search_space(Model()) == {
        "cell_op": {"_type": "layer_choice", "_value": ["0", "1"]},
        "pick": {"_type": "input_choice", "_value": {"candidates": ["cell", "in1"], "n_chosen": 1}},
    }
