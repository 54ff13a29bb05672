"""The TextNAS search space (Wang et al. 2020): a stack of layers over a token sequence.

Every tensor between layers is a masked sequence ``(N, C, L)`` with a padding mask ``(N, L)``
(True = real token). Every operation keeps the shape and leaves padded positions exactly zero,
and what it computes at real positions does not depend on what the padding holds or on how
long it is, so a batch may be padded to any length. The mask must be a prefix (real tokens
first, as ``pack_padded_sequence`` needs for the GRU).

Layer ``i`` (a ``MutableScope`` keyed ``layer{i}``) decides:

* ``layer{i}_input``: ``InputChoice`` with ``n_chosen=1`` over the outputs of the previous
  ``k`` layers (the projected embedding counts as the output before layer 0 and is named
  ``in0`` among the candidates). Layer 0 has only the embedding to read, so it has no such
  choice.
* ``layer{i}_op``: ``LayerChoice`` of the eight operations ``TEXTNAS_OPS``.
* ``layer{i}_skip``: ``InputChoice`` with ``n_chosen=None`` (any subset) over the outputs of
  layers ``0 .. i-1``, summed into the operation's output (layer 0 has none).

After the skip sum a layer applies LayerNorm over the channels at each position: it needs no
batch statistics, so it stays independent of padding and of which other sequences share the
batch. The network averages all layers' outputs, pools them by masked mean and max over the
real positions, and classifies.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trials.nas.mutables import NO_KEY, InputChoice, LayerChoice, MutableScope

TEXTNAS_OPS = ("conv1", "conv3", "conv5", "conv7", "avgpool", "maxpool", "gru", "attention")


def _zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Exactly zero at padded positions (``masked_fill``, so even inf/nan garbage is cleared)."""
    return x.masked_fill(~mask.unsqueeze(1), 0.0)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over ``(N, C, L)`` whose statistics count real positions only.

    A subclass of ``nn.BatchNorm1d`` so that trainers that switch BatchNorm layers to batch
    statistics (ENAS' evaluation) drive it too; it honours ``training``, ``momentum`` (None
    means a cumulative average) and ``track_running_stats`` as BatchNorm does.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[2], dtype=torch.bool, device=x.device)
        m = mask.unsqueeze(1).to(x.dtype)
        x = _zero_padding(x, mask)
        use_batch = self.training or not self.track_running_stats or self.running_mean is None
        if use_batch:
            count = m.sum().clamp_min(1.0)
            mean = (x * m).sum(dim=(0, 2)) / count
            var = (((x - mean[None, :, None]) * m) ** 2).sum(dim=(0, 2)) / count
            if self.training and self.track_running_stats and self.running_mean is not None:
                self._update_running(mean.detach(), var.detach(), float(count))
        else:
            mean, var = self.running_mean, self.running_var  # type: ignore[assignment]
        y = (x - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None] + self.bias[None, :, None]
        return _zero_padding(y, mask)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * count / max(count - 1.0, 1.0)
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


class MaskedConvBN(nn.Module):
    """1-D convolution (same length) + masked BatchNorm + ReLU; padding is zeroed first, so the
    convolution sees zeros beyond the real tokens whatever the batch was padded with."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = MaskedBatchNorm1d(channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(_zero_padding(x, mask)), mask)
        return _zero_padding(F.relu(out), mask)


class MaskedPool(nn.Module):
    """Pooling over a window of 3 in which padded positions take no part: max treats them as
    -inf, average divides by the number of real positions in the window."""

    def __init__(self, kind: str, kernel_size: int = 3) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"MaskedPool: kind must be 'avg' or 'max', got {kind!r}")
        self.kind = kind
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, pad = self.kernel_size, self.kernel_size // 2
        if self.kind == "max":
            filled = x.masked_fill(~mask.unsqueeze(1), float("-inf"))
            out = F.max_pool1d(filled, k, stride=1, padding=pad)
        else:
            m = mask.unsqueeze(1).to(x.dtype)
            total = F.avg_pool1d(_zero_padding(x, mask), k, stride=1, padding=pad, count_include_pad=True)
            count = F.avg_pool1d(m, k, stride=1, padding=pad, count_include_pad=True)
            out = total / count.clamp_min(1.0 / k)
        return _zero_padding(out, mask)


class MaskedBiGRU(nn.Module):
    """Bidirectional GRU over the real tokens only (packed); each direction has half the channels.

    The lengths handed to ``pack_padded_sequence`` live on the CPU, as PyTorch requires.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"MaskedBiGRU: channels must be even (two directions), got {channels}")
        self.gru = nn.GRU(channels, channels // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = x.shape[2]
        lengths = mask.sum(dim=1).clamp_min(1).to("cpu", torch.int64)
        seq = _zero_padding(x, mask).transpose(1, 2)
        packed = pack_padded_sequence(seq, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        return _zero_padding(out.transpose(1, 2), mask)


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention in which padded positions are masked out as keys."""

    def __init__(self, channels: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(channels, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seq = _zero_padding(x, mask).transpose(1, 2)
        # a sequence with no real token would attend to nothing (NaN): let it see its padding
        ignore = ~mask & mask.any(dim=1, keepdim=True)
        out, _ = self.attention(seq, seq, seq, key_padding_mask=ignore, need_weights=False)
        return _zero_padding(out.transpose(1, 2), mask)


def textnas_op(name: str, channels: int, heads: int = 4) -> nn.Module:
    """One of ``TEXTNAS_OPS``; each is called as ``op(x, mask)``."""
    if name.startswith("conv") and name[4:] in ("1", "3", "5", "7"):
        return MaskedConvBN(channels, int(name[4:]))
    if name == "avgpool":
        return MaskedPool("avg")
    if name == "maxpool":
        return MaskedPool("max")
    if name == "gru":
        return MaskedBiGRU(channels)
    if name == "attention":
        return MaskedSelfAttention(channels, heads)
    raise ValueError(f"unknown TextNAS operation {name!r}; allowed: {', '.join(TEXTNAS_OPS)}")


class TextNASLayer(MutableScope):
    """One TextNAS layer (keys in the module docstring).

    ``input_labels``: keys of the outputs this layer may read (``""`` for the embedding), the
    candidates of ``layer{i}_input``; ``skip_labels``: keys of the earlier layers that may be
    summed in. ``forward(inputs, skips, mask)`` takes their outputs in those orders.
    """

    def __init__(
        self, index: int, input_labels: list[str], skip_labels: list[str], channels: int, heads: int = 4
    ) -> None:
        super().__init__(f"layer{index}")
        if not input_labels:
            raise ValueError("TextNASLayer: input_labels must name at least one input")
        self.input_choice = (
            InputChoice(choose_from=input_labels, n_chosen=1, key=f"layer{index}_input")
            if len(input_labels) > 1
            else None
        )
        self.op = LayerChoice(
            OrderedDict((name, textnas_op(name, channels, heads)) for name in TEXTNAS_OPS),
            key=f"layer{index}_op",
        )
        self.skip = (
            InputChoice(choose_from=skip_labels, n_chosen=None, key=f"layer{index}_skip")
            if skip_labels
            else None
        )
        self.norm = nn.LayerNorm(channels)

    def forward(
        self, inputs: list[torch.Tensor], skips: list[torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        x = self.input_choice(inputs) if self.input_choice is not None else inputs[0]
        out = self.op(x, mask)
        if self.skip is not None:
            extra = self.skip(skips)
            if extra is not None:
                out = out + extra
        out = self.norm(out.transpose(1, 2)).transpose(1, 2)
        return _zero_padding(out, mask)


def _masked_mean_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(N, C, L)`` -> ``(N, 2C)``: mean and max over the real positions."""
    m = mask.unsqueeze(1)
    mean = _zero_padding(x, mask).sum(dim=2) / m.sum(dim=2).clamp_min(1).to(x.dtype)
    peak = x.masked_fill(~m, float("-inf")).amax(dim=2)
    peak = torch.where(torch.isinf(peak), torch.zeros_like(peak), peak)  # an empty sequence
    return torch.cat([mean, peak], dim=1)


class TextNASNetwork(nn.Module):
    """A TextNAS network around a user-given embedding (as in NNI).

    ``forward((ids, mask))`` (or ``forward(ids, mask)``) takes token ids ``(N, L)`` and the
    padding mask ``(N, L)`` and returns logits ``(N, n_classes)``. ``embed_dim`` is needed only
    when ``embedding`` is not an ``nn.Embedding``. ``heads`` is the attention's head count.
    """

    def __init__(
        self,
        embedding: nn.Module,
        hidden: int = 64,
        n_layers: int = 24,
        k: int = 5,
        n_classes: int = 2,
        dropout: float = 0.1,
        heads: int = 4,
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim is None and isinstance(embedding, nn.Embedding):
            embed_dim = embedding.embedding_dim
        problems = _check_arguments(embedding, hidden, n_layers, k, n_classes, dropout, heads, embed_dim)
        if problems:
            raise ValueError(f"TextNASNetwork: bad arguments: {'; '.join(problems)}")
        assert embed_dim is not None
        self.embedding = embedding
        self.project = nn.Linear(embed_dim, hidden)
        self.k = k
        self.layers = nn.ModuleList()
        labels = [NO_KEY]  # the projected embedding, then layer0, layer1, ...
        for i in range(n_layers):
            self.layers.append(TextNASLayer(i, labels[-k:], labels[1:], hidden, heads))
            labels.append(f"layer{i}")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, inputs: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        ids = inputs
        if mask is None:
            if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
                raise ValueError("TextNASNetwork.forward: give (ids, mask) as a pair or as two arguments")
            ids, mask = inputs
        mask = mask.bool()
        x = self.project(self.embedding(ids)).transpose(1, 2)
        outputs = [_zero_padding(x, mask)]
        for layer in self.layers:
            outputs.append(layer(outputs[-self.k :], outputs[1:], mask))
        combined = torch.stack(outputs[1:]).mean(dim=0)
        return self.classifier(self.dropout(_masked_mean_max(combined, mask)))


def _check_arguments(
    embedding: Any,
    hidden: Any,
    n_layers: Any,
    k: Any,
    n_classes: Any,
    dropout: Any,
    heads: Any,
    embed_dim: Any,
) -> list[str]:
    """Every problem with the network's arguments, each naming its argument."""

    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    problems = []
    if not isinstance(embedding, nn.Module):
        problems.append(f"embedding must be an nn.Module, got {type(embedding).__name__}")
    if not positive_int(hidden) or hidden % 2:
        problems.append(f"hidden must be a positive even int (the GRU has two directions), got {hidden!r}")
    if not positive_int(heads):
        problems.append(f"heads must be a positive int, got {heads!r}")
    elif positive_int(hidden) and hidden % heads:
        problems.append(f"hidden ({hidden}) must be divisible by heads ({heads})")
    for name, value in (("n_layers", n_layers), ("k", k)):
        if not positive_int(value):
            problems.append(f"{name} must be a positive int, got {value!r}")
    if not positive_int(n_classes) or n_classes < 2:
        problems.append(f"n_classes must be an int >= 2, got {n_classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {dropout!r}")
    if embed_dim is None:
        problems.append("embed_dim must be given when embedding is not an nn.Embedding")
    elif not positive_int(embed_dim):
        problems.append(f"embed_dim must be a positive int, got {embed_dim!r}")
    return problems
