"""The search-space zoo: NNI's cells and the networks built from them.

Parameter counts are worked out by hand from the operations' definitions (``trials.nas.zoo.ops``):
a ``k x k`` convolution from ``a`` to ``b`` channels has ``a * b * k * k`` weights (no bias), a
depthwise one ``a * k * k``, an affine BatchNorm ``2 * channels``, a non-affine one none.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trials.nas import apply_fixed_architecture, parse_model
from trials.nas.oneshot.choices import random_architecture_of
from trials.nas.zoo import (
    DARTS_OPS,
    MACRO_OPS,
    MICRO_OPS,
    NB201_OPS,
    DartsCell,
    DartsNetwork,
    ENASMacroGeneralModel,
    ENASMacroLayer,
    ENASMicroLayer,
    ENASMicroNetwork,
    NASBench201Cell,
    NASBench201Network,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def fixed(model: nn.Module, arch: dict) -> nn.Module:
    apply_fixed_architecture(model, arch)
    return model


def random_fixed(make, seed: int) -> nn.Module:
    """A fresh ``make()`` fixed to a random architecture of its space."""
    model = make()
    return fixed(model, random_architecture_of(make(), seed))


class TwoInputs(nn.Module):
    """Feeds a cell that takes (previous-previous, previous) the same image twice."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor):
        return self.cell(x, x)


class MacroStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = ENASMacroLayer("layer_0", [], 3, 4)
        self.second = ENASMacroLayer("layer_1", [], 4, 4)
        self.third = ENASMacroLayer("layer_2", ["layer_0"], 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.first([x])
        b = self.second([a])
        return self.third([a, b])


# -- shapes for random architectures -----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_darts_cell_outputs_n_nodes_times_channels_at_the_same_resolution(seed: int) -> None:
    model = random_fixed(lambda: TwoInputs(DartsCell(3, 5, 5, 4, False, False)), seed)
    assert model(torch.randn(2, 5, 8, 8)).shape == (2, 12, 8, 8)


@pytest.mark.parametrize("seed", [0, 1])
def test_darts_reduction_cell_halves_the_resolution(seed: int) -> None:
    model = random_fixed(lambda: TwoInputs(DartsCell(2, 6, 6, 4, False, True)), seed)
    assert model(torch.randn(2, 6, 8, 8)).shape == (2, 8, 4, 4)


@pytest.mark.parametrize("seed", [0, 1])
def test_darts_cell_after_a_reduction_reduces_its_first_input(seed: int) -> None:
    model = random_fixed(lambda: DartsCell(2, 6, 8, 4, reduction_p=True, reduction=False), seed)
    assert model(torch.randn(2, 6, 8, 8), torch.randn(2, 8, 4, 4)).shape == (2, 8, 4, 4)


@pytest.mark.parametrize("stride, c_out, size", [(1, 4, 8), (2, 8, 4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_nb201_cell_output_shape(stride: int, c_out: int, size: int, seed: int) -> None:
    model = random_fixed(lambda: NASBench201Cell(0, 4, c_out, stride), seed)
    assert model(torch.randn(2, 4, 8, 8)).shape == (2, c_out, size, size)


@pytest.mark.parametrize("reduction, size", [(False, 8), (True, 4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_enas_micro_layer_returns_previous_and_output(reduction: bool, size: int, seed: int) -> None:
    model = random_fixed(lambda: TwoInputs(ENASMicroLayer(3, 6, 6, 4, reduction)), seed)
    prev, out = model(torch.randn(2, 6, 8, 8))
    assert out.shape == (2, 4, size, size)
    assert prev.shape[-1] == size


@pytest.mark.parametrize("seed", [0, 1])
def test_enas_macro_layers_add_any_subset_of_earlier_layers(seed: int) -> None:
    model = random_fixed(MacroStack, seed)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4, 8, 8)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DartsNetwork(1, 4, 10, n_layers=3, n_nodes=2),
        lambda: NASBench201Network(4, 1, 10, in_channels=1),
        lambda: ENASMacroGeneralModel(num_layers=4, out_filters=4, in_channels=1),
        lambda: ENASMicroNetwork(num_layers=3, num_nodes=2, out_channels=4, in_channels=1),
    ],
    ids=["darts", "nb201", "enas-macro", "enas-micro"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_networks_classify_for_random_architectures(make, seed: int) -> None:
    assert random_fixed(make, seed)(torch.randn(3, 1, 8, 8)).shape == (3, 10)


# -- keys, candidates and the per-cell option --------------------------------------------------


def test_darts_cell_keys_and_candidates_follow_nni() -> None:
    space = parse_model(TwoInputs(DartsCell(2, 4, 4, 4, False, True))).space
    assert space.keys() == [
        "reduce_n2_p0",
        "reduce_n2_p1",
        "reduce_n2_switch",
        "reduce_n3_p0",
        "reduce_n3_p1",
        "reduce_n3_p2",
        "reduce_n3_switch",
    ]
    assert space["reduce_n2_p0"].candidates == DARTS_OPS
    assert space["reduce_n3_switch"].candidates == ("reduce_n3_p0", "reduce_n3_p1", "reduce_n3_p2")
    assert space["reduce_n3_switch"].n_chosen == 2


def test_stacked_darts_cells_share_one_architecture_by_default() -> None:
    space = parse_model(DartsNetwork(1, 4, 10, n_layers=4, n_nodes=2)).space
    assert len(space) == 2 * 7  # one normal and one reduction cell's worth of keys


def test_shared_keys_false_gives_every_darts_cell_its_own_keys() -> None:
    space = parse_model(DartsNetwork(1, 4, 10, n_layers=4, n_nodes=2, shared_keys=False)).space
    assert len(space) == 4 * 7
    assert "cell0_normal_n2_p0" in space and "cell1_reduce_n2_p0" in space


def test_nb201_keys_are_the_six_edges_and_the_space_has_15625_architectures() -> None:
    space = parse_model(NASBench201Network(4, 2, 10, in_channels=1)).space
    assert space.keys() == ["0_1", "0_2", "1_2", "0_3", "1_3", "2_3"]
    assert space["0_1"].candidates == NB201_OPS
    assert space.size() == 15625


def test_nb201_cells_get_their_own_keys_when_asked() -> None:
    space = parse_model(NASBench201Network(4, 2, 10, in_channels=1, shared_keys=False)).space
    assert len(space) == 6 * 6 and "cell5_2_3" in space


def test_enas_micro_keys_name_node_branch_and_role() -> None:
    space = parse_model(TwoInputs(ENASMicroLayer(2, 4, 4, 4, False))).space
    assert space.keys() == [
        "normal_node_0_x_input",
        "normal_node_0_x_op",
        "normal_node_0_y_input",
        "normal_node_0_y_op",
        "normal_node_1_x_input",
        "normal_node_1_x_op",
        "normal_node_1_y_input",
        "normal_node_1_y_op",
    ]
    assert space["normal_node_1_x_input"].candidates == ("in0", "in1", "normal_node_0")
    assert space["normal_node_0_x_op"].candidates == MICRO_OPS


def test_enas_macro_model_has_an_op_per_layer_and_skips_from_layer_two_on() -> None:
    space = parse_model(ENASMacroGeneralModel(num_layers=4, out_filters=4)).space
    layers = [c for c in space.nas_choices if c.candidates == MACRO_OPS]
    skips = [c for c in space.nas_choices if c.candidates != MACRO_OPS]
    assert len(layers) == 4
    assert [c.candidates for c in skips] == [("layer_0",), ("layer_0", "layer_1")]
    assert all(c.n_chosen is None for c in skips)


# -- parameter counts for one fixed architecture, by hand --------------------------------------


def test_nb201_cell_parameters_for_a_fixed_architecture() -> None:
    cell = fixed(
        NASBench201Cell(0, 4, 4, 1),
        {
            "0_1": "conv_3x3",
            "0_2": "conv_1x1",
            "1_2": "skip_connect",
            "0_3": "none",
            "1_3": "avg_pool_3x3",
            "2_3": "conv_3x3",
        },
    )
    conv3 = 4 * 4 * 9 + 2 * 4  # ReLU-conv-BN
    conv1 = 4 * 4 * 1 + 2 * 4
    assert n_params(cell) == conv3 + conv1 + 0 + 0 + 0 + conv3 == 328


def test_nb201_reducing_cell_parameters_for_a_fixed_architecture() -> None:
    cell = fixed(
        NASBench201Cell(0, 4, 8, 2),
        {
            "0_1": "skip_connect",
            "0_2": "avg_pool_3x3",
            "1_2": "conv_3x3",
            "0_3": "conv_1x1",
            "1_3": "none",
            "2_3": "skip_connect",
        },
    )
    factorized_reduce = 2 * (4 * 4) + 2 * 8  # two 1x1 convs to 8/2 channels, BN of 8
    pool_preprocess = 4 * 8 + 2 * 8  # 1x1 conv 4 -> 8 before pooling
    conv3 = 8 * 8 * 9 + 2 * 8
    conv1 = 4 * 8 + 2 * 8
    assert n_params(cell) == factorized_reduce + pool_preprocess + conv3 + conv1 == 736


def test_darts_cell_parameters_for_a_fixed_architecture() -> None:
    cell = fixed(
        TwoInputs(DartsCell(2, 6, 4, 4, False, False)),  # search setting: BatchNorm without scales
        {
            "normal_n2_p0": "sepconv3x3",
            "normal_n2_p1": "maxpool",
            "normal_n2_switch": ["normal_n2_p0", "normal_n2_p1"],
            "normal_n3_p0": "dilconv5x5",
            "normal_n3_p1": "skipconnect",
            "normal_n3_p2": "avgpool",
            "normal_n3_switch": ["normal_n3_p0", "normal_n3_p2"],
        },
    )
    preprocess = 6 * 4 + 4 * 4  # 1x1 convs to 4 channels
    sepconv3 = 2 * (4 * 9 + 4 * 4)  # two (depthwise 3x3 + pointwise) blocks
    dilconv5 = 4 * 25 + 4 * 4
    assert n_params(cell) == preprocess + sepconv3 + dilconv5 == 260


def test_enas_macro_layer_parameters_for_a_fixed_architecture() -> None:
    stack = fixed(
        MacroStack(),
        {
            "LayerChoice1": "conv3x3",
            "LayerChoice2": "maxpool",
            "LayerChoice3": "sepconv5x5",
            "InputChoice4": ["layer_0"],
        },
    )
    first = (3 * 4 + 8) + 4 * 4 * 9 + 8 + 8  # 1x1 conv-BN, 3x3 conv, BN, layer BN
    second = (4 * 4 + 8) + 8 + 8  # 1x1 conv-BN, pool BN, layer BN
    third = (4 * 4 + 8) + (4 * 25 + 4 * 4) + 8 + 8  # 1x1 conv-BN, separable 5x5, BN, layer BN
    assert n_params(stack) == first + second + third == 376


def test_darts_cells_of_4_nodes_have_14_edges_and_4_switches_per_cell_kind() -> None:
    space = parse_model(DartsNetwork(1, 2, 10, n_layers=3, n_nodes=4)).space
    assert len(space) == 2 * (14 + 4)


def test_a_darts_node_computes_only_the_edges_its_switch_keeps() -> None:
    model = TwoInputs(DartsCell(3, 4, 4, 4, False, False))
    keys = [choice.key for choice in parse_model(model).space.nas_choices]
    arch = {key: "sepconv3x3" for key in keys if not key.endswith("switch")}
    arch.update({"normal_n2_switch": [0, 1], "normal_n3_switch": [0, 1], "normal_n4_switch": [1, 3]})
    apply_fixed_architecture(model, arch)
    node = model.cell.nodes[2]  # node 4: edges from the two inputs and from nodes 2 and 3
    ran = []
    for index, edge in enumerate(node.edges):
        edge.register_forward_hook(lambda m, a, o, index=index: ran.append(index))
    model(torch.randn(1, 4, 4, 4))
    assert ran == [1, 3]
