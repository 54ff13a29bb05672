"""The ProxylessNAS zoo network: shapes, keys, candidates, residual ``zero``, widths, arguments.

Parameter counts are worked out by hand: a ``k x k`` convolution from ``a`` to ``b`` channels has
``a * b * k * k`` weights (no bias), a depthwise one ``a * k * k``, a BatchNorm ``2 * channels``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trials.nas import LayerChoice, apply_fixed_architecture, dump_search_space, parse_model
from trials.nas.oneshot.choices import (
    bind_choices,
    connect_all,
    random_architecture_of,
)
from trials.nas.zoo.proxylessnas import (
    MBConv,
    ProxylessBlock,
    ProxylessNASNetwork,
    candidate_names,
    make_divisible,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one

SIX = ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k7_e3", "k7_e6")
TINY = {
    "stage_widths": (8, 16),
    "stage_depths": (2, 2),
    "stage_strides": (2, 1),
    "stem_channels": 8,
    "first_channels": 8,
    "last_channels": 16,
    "n_classes": 10,
}


def tiny(**overrides) -> ProxylessNASNetwork:
    return ProxylessNASNetwork(**{**TINY, **overrides})


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def keys(model: nn.Module) -> list[str]:
    return parse_model(model).space.keys()


def all_of(model: nn.Module, name: str) -> nn.Module:
    apply_fixed_architecture(model, {key: name for key in keys(model)})
    return model


def random_fixed(make, seed: int) -> nn.Module:
    model = make()
    apply_fixed_architecture(model, random_architecture_of(make(), seed))
    return model


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"stage_strides": (1, 1), "first_block": "choice"},
        {
            "stage_widths": (8, 16, 24),
            "stage_depths": (1, 2, 3),
            "stage_strides": (2, 1, 2),
            "stem_stride": 1,
        },
    ],
    ids=["tiny", "choice-first", "three-stages"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_architectures_classify_small_images(in_channels: int, config: dict, seed: int) -> None:
    model = random_fixed(lambda: tiny(in_channels=in_channels, **config), seed)
    assert model(torch.randn(3, in_channels, 8, 8)).shape == (3, 10)


def test_a_fixed_network_is_plain_and_keeps_only_the_chosen_candidates() -> None:
    model = random_fixed(tiny, 3)
    assert not any(isinstance(m, LayerChoice) for m in model.modules())
    assert not any("k3_e3" in name or "zero" in name for name, _ in model.named_parameters())
    model.eval()
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_the_super_net_runs_with_every_candidate_on() -> None:
    model = tiny()
    _, groups = bind_choices(model)
    connect_all(groups)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_blocks_offer_six_mbconvs_and_zero_only_where_residual() -> None:
    space = parse_model(tiny()).space
    assert space.keys() == ["s0_b0", "s0_b1", "s1_b0", "s1_b1"]
    # s0_b0 strides, s1_b0 widens 8 -> 16: neither adds its input, so neither may be skipped
    assert space["s0_b0"].candidates == space["s1_b0"].candidates == SIX == candidate_names()
    assert space["s0_b1"].candidates == space["s1_b1"].candidates == (*SIX, "zero")
    _, groups = bind_choices(tiny())
    assert [g.zero_candidates() for g in groups] == [[], [6], [], [6]]  # what one-shot trainers see


def test_the_imagenet_defaults_are_the_papers_space() -> None:
    model = ProxylessNASNetwork()
    space = parse_model(model).space
    assert len(space) == 21  # 4 + 4 + 4 + 4 + 4 + 1 blocks
    with_zero = [c.key for c in space.nas_choices if "zero" in c.candidates]
    assert len(with_zero) == 15  # every block but the first of each stage
    assert not {"s0_b0", "s1_b0", "s2_b0", "s3_b0", "s4_b0", "s5_b0"} & set(with_zero)
    assert space.size() == 6**6 * 7**15
    assert model.widths == (32, 16, 24, 40, 80, 96, 192, 320, 1280)
    assert model.stem[0].stride == (2, 2)
    assert model.classifier.out_features == 1000


def test_the_search_space_lists_the_keys_in_network_order() -> None:
    model = tiny(
        stage_widths=(8, 16, 24), stage_depths=(1, 2, 1), stage_strides=(2, 1, 2), first_block="choice"
    )
    assert list(dump_search_space(model)) == ["first", "s0_b0", "s1_b0", "s1_b1", "s2_b0"]
    assert parse_model(model).space["first"].candidates == SIX  # never residual


def test_other_kernels_and_expansions_name_their_candidates() -> None:
    space = parse_model(tiny(kernels=(3, 5), expansions=(1, 4))).space
    assert space["s0_b1"].candidates == ("k3_e1", "k3_e4", "k5_e1", "k5_e4", "zero")


def test_zero_makes_a_residual_block_the_identity() -> None:
    block = ProxylessBlock("b", 8, 8, 1)
    apply_fixed_architecture(block, {"b": "zero"})
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(block(x), x)
    assert n_params(block) == 0


def test_a_network_of_zeros_keeps_the_shapes() -> None:
    model = tiny()
    arch = {"s0_b0": "k3_e3", "s0_b1": "zero", "s1_b0": "k5_e6", "s1_b1": "zero"}
    apply_fixed_architecture(model, arch)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def mbconv_params(c_in: int, c_out: int, kernel: int, expansion: int) -> int:
    hidden = c_in * expansion
    expand = c_in * hidden + 2 * hidden if expansion != 1 else 0
    return expand + hidden * kernel * kernel + 2 * hidden + hidden * c_out + 2 * c_out


def test_parameter_count_of_an_all_k3_e3_network_matches_a_hand_count() -> None:
    model = all_of(tiny(), "k3_e3")
    stem = 3 * 8 * 9 + 16
    first = 8 * 9 + 16 + 8 * 8 + 16  # expansion 1: no 1x1 expansion
    assert mbconv_params(8, 8, 3, 1) == first == 168
    blocks = 2 * mbconv_params(8, 8, 3, 3) + mbconv_params(8, 16, 3, 3) + mbconv_params(16, 16, 3, 3)
    assert blocks == 2 * (8 * 24 + 48 + 24 * 9 + 48 + 24 * 8 + 16) + 920 + 2192
    head = 16 * 16 + 32 + 16 * 10 + 10  # feature mix conv + BN, classifier with bias
    assert n_params(model) == stem + first + blocks + head == 5394


def test_bigger_kernels_and_expansions_cost_more_parameters() -> None:
    small, big = n_params(all_of(tiny(), "k3_e3")), n_params(all_of(tiny(), "k7_e6"))
    assert small < big
    assert n_params(MBConv(8, 16, 7, 2, 6)) == mbconv_params(8, 16, 7, 6)


def test_width_mult_rounds_channels_to_multiples_of_eight() -> None:
    assert [make_divisible(v) for v in (44.8, 22.4, 33.6, 134.4, 12, 4, 20)] == [48, 24, 32, 136, 16, 8, 24]
    half = tiny(width_mult=0.5)  # 8 * 0.5 = 4 -> 8, 16 * 0.5 -> 8; last_channels only grows
    assert half.widths == (8, 8, 8, 8, 16)
    wide = tiny(width_mult=1.4)  # 11.2 -> 16, 22.4 -> 24, last 22.4 -> 24
    assert wide.widths == (16, 16, 16, 24, 24)
    assert wide.stem[0].out_channels == 16 and wide.classifier.in_features == 24
    assert random_fixed(lambda: tiny(width_mult=1.4), 0)(torch.randn(1, 3, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"stage_depths": (2,)}, "stage_widths, stage_depths and stage_strides"),
        ({"stage_strides": (2, 1, 1)}, "stage_widths, stage_depths and stage_strides"),
        ({"width_mult": 0}, "width_mult"),
        ({"width_mult": -1.0}, "width_mult"),
        ({"kernels": (3, 4)}, "kernels"),
        ({"kernels": ()}, "kernels"),
        ({"expansions": (3, 3)}, "expansions"),
        ({"stage_strides": (3, 1)}, "stage_strides"),
        ({"stage_depths": (0, 2)}, "stage_depths"),
        ({"stage_widths": ()}, "stage_widths"),
        ({"first_block": "conv"}, "first_block"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_classes": 0}, "n_classes"),
    ],
)
def test_bad_arguments_raise_one_value_error_naming_them(overrides: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must"):
        tiny(**overrides)
