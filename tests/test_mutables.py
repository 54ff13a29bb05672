"""LayerChoice / InputChoice / MutableScope: keys, parsing rules and forward semantics."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from nas_models import ScopedNet, digits_net
from torch import nn

from trials.nas import (
    InputChoice,
    LayerChoice,
    MutableError,
    MutableScope,
    apply_fixed_architecture,
    dump_search_space,
    parse_model,
)


class TwoAuto(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = LayerChoice([nn.Identity(), nn.ReLU()])
        self.b = LayerChoice([nn.Identity(), nn.Tanh()])
        self.skip = InputChoice(choose_from=[self.a.key, self.b.key], n_chosen=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a(x)
        return self.skip([a, self.b(a)])


def test_auto_keys_are_numbered_per_model_not_per_process() -> None:
    first = dump_search_space(TwoAuto())
    second = dump_search_space(TwoAuto())
    assert first == second
    assert sorted(first) == ["InputChoice3", "LayerChoice1", "LayerChoice2"]


def test_choose_from_written_with_provisional_keys_follows_the_final_keys() -> None:
    space = dump_search_space(TwoAuto())
    assert space["InputChoice3"]["_value"]["candidates"] == ["LayerChoice1", "LayerChoice2"]


def test_auto_keys_skip_numbers_taken_by_explicit_keys() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice([nn.Identity()], key="LayerChoice1")
            self.b = LayerChoice([nn.Identity()])

    assert sorted(dump_search_space(Net())) == ["LayerChoice1", "LayerChoice2"]


def test_explicit_keys_are_kept() -> None:
    assert sorted(dump_search_space(digits_net())) == ["conv1", "conv2", "conv3", "skip"]


def test_mutables_sharing_a_key_share_one_decision() -> None:
    model = ScopedNet()
    arch = {"shared_op1": "conv5x5", "shared_op2": "1", "shared_mix": ["shared_op1", "shared_inner"]}
    arch |= {"own_op1": "identity", "own_op2": "0", "own_mix": ["own_op1", "own_op2"]}
    arch |= {"LayerChoice1": "0", "LayerChoice2": "1", "LayerChoice3": "0", "InputChoice4": ["in2"]}
    apply_fixed_architecture(model, arch)
    assert model.cell1.op1.kernel_size == model.cell2.op1.kernel_size == (5, 5)
    assert isinstance(model.cell1.op2, nn.MaxPool2d) and isinstance(model.cell2.op2, nn.MaxPool2d)
    assert isinstance(model.cell3.op1, nn.Identity)


def test_mutables_sharing_a_key_must_agree_on_candidates() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice({"x": nn.Identity(), "y": nn.ReLU()}, key="op")
            self.b = LayerChoice({"x": nn.Identity(), "z": nn.Tanh()}, key="op")

    with pytest.raises(MutableError, match="key 'op' is shared .* which disagree"):
        parse_model(Net())


def test_choose_from_may_only_name_keys_seen_before() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.skip = InputChoice(choose_from=["later"], n_chosen=1, key="skip")
            self.later = LayerChoice([nn.Identity()], key="later")

    with pytest.raises(MutableError, match="InputChoice 'skip' at skip: choose_from names 'later'"):
        parse_model(Net())


def test_choose_from_may_name_an_earlier_scope() -> None:
    class Cell(MutableScope):
        def __init__(self) -> None:
            super().__init__("cell")
            self.op = LayerChoice([nn.Identity()], key="op")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = Cell()
            self.skip = InputChoice(choose_from=["cell", ""], n_chosen=1, key="skip")

    space = dump_search_space(Net())
    assert space["skip"]["_value"]["candidates"] == ["cell", "in1"]
    assert "cell" not in space


def test_n_candidates_alone_gets_distinct_candidate_names() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.skip = InputChoice(n_candidates=3, n_chosen=1, key="skip")

    assert dump_search_space(Net())["skip"]["_value"]["candidates"] == ["in0", "in1", "in2"]


def test_nested_choice_inside_a_layer_choice_is_refused_at_construction() -> None:
    inner = LayerChoice([nn.Identity()], key="inner")
    with pytest.raises(
        MutableError, match="LayerChoice 'outer': candidate '0' contains LayerChoice 'inner'.*nested"
    ):
        LayerChoice([nn.Sequential(inner)], key="outer")


def test_nested_choice_added_after_construction_is_refused_at_parse() -> None:
    outer = LayerChoice([nn.Sequential()], key="outer")
    outer[0].add_module("inner", InputChoice(n_candidates=1, key="inner"))
    with pytest.raises(
        MutableError, match="InputChoice 'inner' at 0.0.inner is nested inside LayerChoice 'outer'"
    ):
        parse_model(nn.Sequential(outer))


def test_layer_choice_names_list_candidates_by_position() -> None:
    assert LayerChoice([nn.Identity(), nn.ReLU()]).names == ["0", "1"]


def test_layer_choice_registers_candidates_under_their_names() -> None:
    choice = LayerChoice({"conv": nn.Conv2d(1, 1, 1)}, key="op")
    assert set(choice.state_dict()) == {"conv.weight", "conv.bias"}
    assert choice["conv"] is choice[0]


def test_layer_choice_refuses_a_non_module_candidate() -> None:
    with pytest.raises(TypeError, match="candidate '0' must be an nn.Module, got int"):
        LayerChoice([3])


def test_layer_choice_refuses_a_reserved_candidate_name() -> None:
    with pytest.raises(MutableError, match="candidate name 'forward' is reserved"):
        LayerChoice({"forward": nn.Identity()})


def test_layer_choice_refuses_other_candidate_containers() -> None:
    with pytest.raises(TypeError, match="op_candidates must be a list or a dict"):
        LayerChoice(nn.Identity())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give n_candidates or choose_from"),
        ({"n_candidates": 0}, "n_candidates must be at least 1"),
        ({"n_candidates": 2, "choose_from": ["a"]}, "n_candidates=2 but choose_from has 1"),
        ({"n_candidates": 2, "n_chosen": 3}, "n_chosen must be None or 0..2"),
        ({"n_candidates": 2, "reduction": "max"}, "reduction must be one of sum, mean, concat, none"),
    ],
)
def test_input_choice_refuses_inconsistent_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(MutableError, match=message):
        InputChoice(key="ic", **kwargs)


def test_forward_before_an_architecture_is_applied_says_what_to_do() -> None:
    with pytest.raises(
        RuntimeError, match="LayerChoice 'op' has no architecture yet: call get_and_apply_next_architecture"
    ):
        LayerChoice([nn.Identity()], key="op")(torch.ones(1))


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [("sum", [4.0, 6.0]), ("mean", [2.0, 3.0]), ("concat", [1.0, 2.0, 3.0, 4.0]), ("none", None)],
)
def test_input_choice_reductions(reduction: str, expected: list[float] | None) -> None:
    choice = InputChoice(n_candidates=3, n_chosen=2, reduction=reduction, key="ic")
    choice.set_chosen([0, 2])
    inputs = [torch.tensor([[1.0, 2.0]]), torch.tensor([[100.0, 100.0]]), torch.tensor([[3.0, 4.0]])]
    out = choice(inputs)
    if expected is None:
        assert [t.tolist() for t in out] == [[[1.0, 2.0]], [[3.0, 4.0]]]
    else:
        assert out.flatten().tolist() == expected


def test_input_choice_with_nothing_chosen_returns_none() -> None:
    choice = InputChoice(n_candidates=2, n_chosen=None, key="ic")
    choice.set_chosen([])
    assert choice([torch.ones(1), torch.ones(1)]) is None


def test_input_choice_takes_a_dict_keyed_by_choose_from() -> None:
    choice = InputChoice(choose_from=["a", "b"], n_chosen=1, key="ic")
    choice.set_chosen([1])
    assert choice({"b": torch.tensor(2.0), "a": torch.tensor(1.0)}).item() == 2.0


def test_return_mask_gives_the_output_and_the_mask() -> None:
    choice = InputChoice(n_candidates=2, n_chosen=1, return_mask=True, key="ic")
    choice.set_chosen([1])
    out, mask = choice([torch.tensor(1.0), torch.tensor(2.0)])
    assert out.item() == 2.0 and mask.tolist() == [False, True]


def test_float_mask_weights_candidates_for_one_shot_trainers() -> None:
    choice = LayerChoice([nn.Identity(), nn.Identity()], key="op")
    choice.set_mask(torch.tensor([0.25, 0.75]))
    assert choice(torch.tensor(4.0)).item() == pytest.approx(4.0)
    choice.set_mask(torch.tensor([0.0, 0.5]))
    assert choice(torch.tensor(4.0)).item() == pytest.approx(2.0)


def test_a_model_without_choices_has_nothing_to_search() -> None:
    with pytest.raises(MutableError, match="no LayerChoice or InputChoice"):
        parse_model(nn.Linear(1, 1))


def test_prune_removes_candidates_their_parameters_and_the_decision() -> None:
    choice = LayerChoice(
        OrderedDict(conv=nn.Conv2d(2, 2, 3), skip=nn.Identity(), lin=nn.Linear(2, 2), relu=nn.ReLU()),
        key="op",
    )
    choice.set_chosen([0])
    choice.prune([3, 1])
    assert choice.names == ["skip", "relu"] and len(choice) == 2
    assert not list(choice.parameters()) and set(choice.state_dict()) == set()
    assert dump_search_space(choice) == {"op": {"_type": "layer_choice", "_value": ["skip", "relu"]}}
    with pytest.raises(RuntimeError, match="has no architecture yet"):
        choice(torch.ones(1))
    choice.set_chosen([1])
    assert choice(torch.tensor([-1.0])).item() == 0.0
    with pytest.raises(MutableError, match=r"prune indices must be in 0\.\.1, got \[2\]"):
        choice.prune([2])
    with pytest.raises(MutableError, match="at least one candidate to keep"):
        choice.prune([])
