"""Auto keys are given at construction, per model, so ``choice.key`` read in ``__init__`` is final."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import pytest
from torch import nn

from trials.nas import InputChoice, LayerChoice, MutableScope, dump_search_space, parse_model


def ops() -> list[nn.Module]:
    return [nn.Identity(), nn.ReLU(), nn.Tanh()]


class Net(nn.Module):
    """The usual model: choices built in ``__init__`` in the order they are registered."""

    def __init__(self) -> None:
        super().__init__()
        self.a = LayerChoice(ops())
        self.b = LayerChoice(ops())
        self.skip = InputChoice(choose_from=[self.a.key, self.b.key], n_chosen=1)
        self.keys_seen_in_init = [self.a.key, self.b.key, self.skip.key]


class SposLike(nn.Module):
    """Builds a FLOPs-style table keyed by ``choice.key`` in ``__init__``, as NNI's SPOS example does."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.flops: dict[str, list[int]] = {}
        for width in (4, 8, 16):
            choice = LayerChoice([nn.Linear(width, width), nn.Identity()])
            self.flops[choice.key] = [width * width, 0]
            self.blocks.append(choice)


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_key_read_in_init_is_the_parsed_key() -> None:
    model = Net()
    assert model.keys_seen_in_init == ["LayerChoice1", "LayerChoice2", "InputChoice3"]
    assert sorted(dump_search_space(model)) == sorted(model.keys_seen_in_init)


def test_two_builds_in_one_process_give_the_same_keys() -> None:
    assert Net().keys_seen_in_init == Net().keys_seen_in_init
    assert dump_search_space(Net()) == dump_search_space(Net())


def test_table_keyed_by_choice_key_in_init_matches_the_search_space() -> None:
    model = SposLike()
    assert (
        list(model.flops)
        == list(dump_search_space(model))
        == ["LayerChoice1", "LayerChoice2", "LayerChoice3"]
    )


def test_choose_from_built_from_keys_read_in_init_is_kept() -> None:
    space = dump_search_space(Net())
    assert space["InputChoice3"]["_value"]["candidates"] == ["LayerChoice1", "LayerChoice2"]


def test_choices_built_in_a_nested_module_count_with_the_outer_model() -> None:
    class Cell(MutableScope):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.op = LayerChoice(ops())

    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = LayerChoice(ops())
            self.cells = nn.ModuleList([Cell("c1"), Cell("c2")])

    model = Outer()
    assert [model.first.key, model.cells[0].op.key, model.cells[1].op.key] == [
        "LayerChoice1",
        "LayerChoice2",
        "LayerChoice3",
    ]


def test_choices_built_at_top_level_get_their_keys_at_parse() -> None:
    a, b = LayerChoice(ops()), LayerChoice(ops())
    assert "@" in a.provisional_key and "@" in b.provisional_key
    model = nn.Sequential(b, a)
    with no_warnings():  # nobody read the provisional keys
        assert list(dump_search_space(model)) == ["LayerChoice1", "LayerChoice2"]
    assert (b.key, a.key) == ("LayerChoice1", "LayerChoice2")


def test_reading_a_provisional_key_that_parse_renames_warns() -> None:
    a = LayerChoice(ops())
    provisional = a.key
    with pytest.warns(
        UserWarning, match=f"{provisional} -> LayerChoice1 \\(built outside any module's __init__"
    ):
        parse_model(nn.Sequential(a))


class OutOfOrder(nn.Module):
    """Builds ``second`` before ``first`` but registers ``first`` first."""

    def __init__(self, read: bool) -> None:
        super().__init__()
        second = LayerChoice(ops())
        first = LayerChoice(ops())
        self.first, self.second = first, second
        self.seen = second.key if read else None


def test_out_of_order_construction_is_renumbered_at_parse() -> None:
    model = OutOfOrder(read=False)
    with no_warnings():
        parse_model(model)
    assert (model.first.key, model.second.key) == ("LayerChoice1", "LayerChoice2")


def test_out_of_order_construction_warns_when_a_renamed_key_was_read() -> None:
    model = OutOfOrder(read=True)
    with pytest.warns(
        UserWarning, match="LayerChoice1 -> LayerChoice2 \\(OutOfOrder built its choices in another order"
    ):
        parse_model(model)
    assert model.seen == "LayerChoice1" and model.second.key == "LayerChoice2"


def test_a_parse_warns_once_and_a_second_parse_not_at_all() -> None:
    model = OutOfOrder(read=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_model(model)
    assert len(caught) == 1
    with no_warnings():
        parse_model(model)


def test_explicit_key_built_before_an_auto_key_is_skipped_at_construction() -> None:
    class Explicit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice(ops(), key="LayerChoice1")
            self.b = LayerChoice(ops())
            self.seen = self.b.key

    model = Explicit()
    assert model.seen == "LayerChoice2"
    with no_warnings():
        assert list(dump_search_space(model)) == ["LayerChoice1", "LayerChoice2"]


def test_explicit_key_built_after_an_auto_key_takes_its_number_at_parse() -> None:
    class ExplicitLater(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice(ops())
            self.b = LayerChoice(ops(), key="LayerChoice1")

    model = ExplicitLater()
    assert sorted(dump_search_space(model)) == ["LayerChoice1", "LayerChoice2"]
    assert model.a.key == "LayerChoice2"


def test_choose_from_of_cells_built_separately_follows_each_cells_own_choices() -> None:
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice(ops())
            self.mix = InputChoice(choose_from=[self.op.key, ""], n_chosen=1)

    first, second = Cell(), Cell()
    assert first.op.key == second.op.key == "LayerChoice1"  # each numbered by its own __init__
    with pytest.warns(UserWarning, match="numbered while building Cell, not the parsed ModuleList"):
        space = dump_search_space(nn.ModuleList([first, second]))
    assert space["InputChoice2"]["_value"]["candidates"] == ["LayerChoice1", "in1"]
    assert space["InputChoice4"]["_value"]["candidates"] == ["LayerChoice3", "in1"]


def test_choose_from_naming_provisional_keys_follows_the_parse_time_keys() -> None:
    a, b = LayerChoice(ops()), LayerChoice(ops())
    skip = InputChoice(choose_from=[a.key, b.key], n_chosen=1)
    with pytest.warns(UserWarning, match="built outside any module's __init__"):
        space = dump_search_space(nn.Sequential(a, b, skip))
    assert space["InputChoice3"]["_value"]["candidates"] == ["LayerChoice1", "LayerChoice2"]


def test_choices_built_by_a_helper_called_from_init_count_with_the_model() -> None:
    def make_block() -> nn.Module:
        return nn.Sequential(nn.Identity(), LayerChoice(ops()))

    class Helped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([make_block(), make_block()])

    model = Helped()
    assert [block[1].key for block in model.blocks] == ["LayerChoice1", "LayerChoice2"]
