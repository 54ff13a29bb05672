"""The TextNAS space: masked operations, its keys, and an ENAS search on the synthetic task."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from examples.textnas.data import (
    BIGRAM_A,
    BIGRAM_B,
    FIRST,
    MARGIN,
    MIN_GAP,
    N_CLASSES,
    PAD,
    SECOND,
    make_batches,
    make_examples,
)
from trials.nas import apply_fixed_architecture
from trials.nas.oneshot import EnasTrainer
from trials.nas.oneshot.choices import (
    apply_architecture,
    bind_choices,
    random_architecture_of,
)
from trials.nas.zoo.textnas import (
    TEXTNAS_OPS,
    MaskedBatchNorm1d,
    MaskedBiGRU,
    TextNASNetwork,
    textnas_op,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny nets run best on one

C = 8
LENGTHS = [9, 4, 1, 6]


def padding_mask(lengths: list[int], width: int) -> torch.Tensor:
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def small_net(n_layers: int = 4, k: int = 2, **kwargs) -> TextNASNetwork:
    torch.manual_seed(0)
    return TextNASNetwork(nn.Embedding(32, 12, padding_idx=PAD), hidden=C, n_layers=n_layers, k=k, **kwargs)


def fixed_random(model: nn.Module, seed: int) -> nn.Module:
    apply_fixed_architecture(model, random_architecture_of(model, seed))
    return model


# -- operations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEXTNAS_OPS)
@pytest.mark.parametrize("training", [True, False])
def test_op_keeps_shape_zeroes_padding_and_ignores_padding_content(name: str, training: bool) -> None:
    torch.manual_seed(1)
    op = textnas_op(name, C, heads=2).train(training)
    mask = padding_mask(LENGTHS, 9)
    real = torch.randn(len(LENGTHS), C, 9)
    clean = real.masked_fill(~mask[:, None, :], 0.0)
    garbage = torch.where(mask[:, None, :], real, 100 * torch.randn_like(real))
    out_clean, out_garbage = op(clean, mask), op(garbage, mask)
    assert out_clean.shape == (len(LENGTHS), C, 9)
    assert torch.all(out_clean.masked_select(~mask[:, None, :]) == 0)
    assert torch.all(out_garbage.masked_select(~mask[:, None, :]) == 0)
    torch.testing.assert_close(out_clean, out_garbage, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out_clean).all()


@pytest.mark.parametrize("name", TEXTNAS_OPS)
def test_op_output_at_real_positions_does_not_depend_on_padded_length(name: str) -> None:
    torch.manual_seed(2)
    op = textnas_op(name, C, heads=2).eval()
    mask = padding_mask(LENGTHS, 9)
    x = torch.randn(len(LENGTHS), C, 9).masked_fill(~mask[:, None, :], 0.0)
    longer = torch.cat([x, 7 * torch.randn(len(LENGTHS), C, 5)], dim=2)
    out = op(x, mask)
    out_longer = op(longer, padding_mask(LENGTHS, 14))
    torch.testing.assert_close(out_longer[:, :, :9], out, atol=1e-5, rtol=1e-5)


def test_pools_see_only_real_positions_in_their_window() -> None:
    x = -torch.arange(1.0, 6.0).view(1, 1, 5)  # -1 .. -5, all below the zeros of the padding
    mask = padding_mask([3], 5)
    avg, peak = textnas_op("avgpool", 1)(x, mask), textnas_op("maxpool", 1)(x, mask)
    torch.testing.assert_close(avg[0, 0], torch.tensor([-1.5, -2.0, -2.5, 0.0, 0.0]))
    torch.testing.assert_close(peak[0, 0], torch.tensor([-1.0, -1.0, -2.0, 0.0, 0.0]))


def test_masked_batch_norm_uses_real_positions_only() -> None:
    bn = MaskedBatchNorm1d(3)
    mask = padding_mask([5, 2], 5)
    x = torch.randn(2, 3, 5)
    out = bn(x, mask)
    real = out.permute(1, 0, 2)[:, mask]  # (C, real positions)
    torch.testing.assert_close(real.mean(dim=1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(real.var(dim=1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    values = x.permute(1, 0, 2)[:, mask]
    expected = 0.9 * torch.zeros(3) + 0.1 * values.mean(dim=1)
    torch.testing.assert_close(bn.running_mean, expected)
    assert int(bn.num_batches_tracked) == 1


def test_gru_packs_with_lengths_on_the_cpu() -> None:
    gru = MaskedBiGRU(C)
    mask = padding_mask(LENGTHS, 9)
    x = torch.randn(len(LENGTHS), C, 9)
    out = gru(x, mask)
    assert out.shape == (len(LENGTHS), C, 9) and out.device.type == "cpu"
    # a sequence's output in the batch is what the GRU gives it alone, unpadded
    alone = gru(x[1:2, :, :4], padding_mask([4], 4))
    torch.testing.assert_close(out[1:2, :, :4], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_gru_and_network_run_on_cuda_with_lengths_moved_to_the_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    mask = padding_mask(LENGTHS, 9).cuda()
    out = MaskedBiGRU(C).cuda()(torch.randn(len(LENGTHS), C, 9, device="cuda"), mask)
    assert out.device.type == "cuda"
    net = fixed_random(small_net(), 0).cuda()
    ids = torch.randint(1, 32, (len(LENGTHS), 9), device="cuda")
    assert net((ids, mask)).shape == (len(LENGTHS), 2)


# -- the network --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("training", [True, False])
def test_network_logits_do_not_depend_on_padding_length(seed: int, training: bool) -> None:
    net = fixed_random(small_net(dropout=0.0), seed).train(training)
    mask = padding_mask(LENGTHS, 9)
    ids = torch.randint(1, 32, (len(LENGTHS), 9)).masked_fill(~mask, PAD)
    longer = torch.cat([ids, torch.randint(1, 32, (len(LENGTHS), 5))], dim=1)  # garbage padding
    logits = net((ids, mask))
    logits_longer = net((longer, padding_mask(LENGTHS, 14)))
    assert logits.shape == (len(LENGTHS), 2) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits_longer, logits, atol=1e-4, rtol=1e-4)


def test_network_takes_ids_and_mask_as_two_arguments_too() -> None:
    net = fixed_random(small_net(), 3).eval()
    mask = padding_mask(LENGTHS, 9)
    ids = torch.randint(1, 32, (len(LENGTHS), 9))
    torch.testing.assert_close(net(ids, mask), net((ids, mask)))


def test_search_space_has_per_layer_op_input_and_skip_choices() -> None:
    n_layers, k = 5, 3
    _, groups = bind_choices(small_net(n_layers=n_layers, k=k))
    by_key = {group.key: group for group in groups}
    expected = ["layer0_op"]
    for i in range(1, n_layers):
        expected += [f"layer{i}_input", f"layer{i}_op", f"layer{i}_skip"]
    assert sorted(by_key) == sorted(expected)
    for i in range(n_layers):
        op = by_key[f"layer{i}_op"]
        assert op.is_layer and tuple(op.candidates) == TEXTNAS_OPS
    for i in range(1, n_layers):
        window = ["in0"] + [f"layer{j}" for j in range(i)]
        inputs, skip = by_key[f"layer{i}_input"], by_key[f"layer{i}_skip"]
        assert not inputs.is_layer and inputs.n_chosen == 1
        assert list(inputs.candidates) == window[-k:]
        assert not skip.is_layer and skip.n_chosen is None
        assert list(skip.candidates) == [f"layer{j}" for j in range(i)]


def test_any_architecture_runs_including_empty_and_full_skips() -> None:
    net = small_net(n_layers=3)
    _, groups = bind_choices(net)
    ids, mask, _ = make_examples(4, min_len=19, max_len=24)
    for skip_all in (False, True):
        arch = {}
        for group in groups:
            if group.is_layer:
                arch[group.key] = [TEXTNAS_OPS.index("gru")]
            elif group.n_chosen is None:
                arch[group.key] = list(range(len(group))) if skip_all else []
            else:
                arch[group.key] = [0]
        apply_architecture(groups, arch)
        assert torch.isfinite(net((ids, mask))).all()


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"hidden": 7}, ["hidden"]),
        ({"hidden": 8, "heads": 3}, ["heads"]),
        ({"n_layers": 0, "k": 0}, ["n_layers", "k"]),
        ({"n_classes": 1, "dropout": 1.5}, ["n_classes", "dropout"]),
    ],
)
def test_bad_arguments_give_one_value_error_naming_them(kwargs: dict, names: list[str]) -> None:
    with pytest.raises(ValueError, match="TextNASNetwork: bad arguments") as info:
        TextNASNetwork(nn.Embedding(10, 4), **kwargs)
    for name in names:
        assert name in str(info.value)


def test_custom_embedding_needs_embed_dim() -> None:
    embedding = nn.Sequential(nn.Embedding(10, 6), nn.Dropout(0.0))
    with pytest.raises(ValueError, match="embed_dim"):
        TextNASNetwork(embedding, hidden=C, n_layers=2)
    net = fixed_random(TextNASNetwork(embedding, hidden=C, n_layers=2, heads=2, embed_dim=6), 0)
    assert net((torch.randint(1, 10, (2, 5)), padding_mask([5, 3], 5))).shape == (2, 2)


# -- the synthetic task and an ENAS search --------------------------------------------------------


def test_synthetic_label_is_the_bigram_bit_and_the_order_bit() -> None:
    ids, mask, labels = make_examples(200, seed=5)
    assert set(labels.tolist()) == {0, 1, 2, 3}
    for row in range(200):
        tokens = ids[row, mask[row]].tolist()
        assert torch.all(ids[row, ~mask[row]] == PAD)
        bigram = any(a == BIGRAM_A and b == BIGRAM_B for a, b in itertools.pairwise(tokens))
        assert tokens.count(FIRST) == tokens.count(SECOND) == 1
        in_order = tokens.index(FIRST) < tokens.index(SECOND)
        assert int(labels[row]) == 2 * int(bigram) + int(in_order)


def test_synthetic_order_tokens_are_far_apart_and_away_from_the_ends() -> None:
    ids, mask, _ = make_examples(200, seed=6)
    for row in range(200):
        tokens = ids[row, mask[row]].tolist()
        at = sorted((tokens.index(FIRST), tokens.index(SECOND)))
        assert at[1] - at[0] >= MIN_GAP
        assert at[0] >= MARGIN and at[1] < len(tokens) - MARGIN


def test_synthetic_task_refuses_lengths_too_short_for_its_order_tokens() -> None:
    with pytest.raises(ValueError, match="min_len"):
        make_examples(4, min_len=2 * MARGIN + MIN_GAP, max_len=40)


def test_enas_searches_one_epoch_and_its_export_applies_to_a_fresh_network(tmp_path) -> None:
    def make() -> TextNASNetwork:
        return small_net(n_layers=3, k=2, n_classes=N_CLASSES)

    trainer = EnasTrainer(
        make(),
        train_data=make_batches(3, batch_size=8, seed=0),
        valid_data=make_batches(2, batch_size=8, seed=1),
        num_epochs=1,
        controller_steps=4,
        controller_aggregate=2,
        export_samples=2,
        progress=False,
        seed=0,
    )
    exported = trainer.fit()
    (tmp_path / "arch.json").write_text(json.dumps(exported))
    fresh = make()
    apply_fixed_architecture(fresh, tmp_path / "arch.json")
    (ids, mask), _ = make_batches(1, batch_size=5, seed=2)[0]
    assert fresh((ids, mask)).shape == (5, N_CLASSES)
    assert exported["layer0_op"]["_value"] in TEXTNAS_OPS
    assert isinstance(exported["layer1_skip"]["_value"], list)
