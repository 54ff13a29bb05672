"""scikit-learn's handwritten digits (1,797 8x8 images, shipped inside scikit-learn: no download),
split once, deterministically, into train / validation / test tensors."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import torch


def _digits_file() -> Path:
    """The CSV that scikit-learn ships; found without importing scikit-learn (2 s saved per trial)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("this example needs scikit-learn installed (it ships the digits data)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"


def load_splits(
    seed: int = 0, device: torch.device | str | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train", "val", "test"}`` -> (images N x 1 x 8 x 8 scaled to [0, 1], labels N), on
    ``device`` (the split is drawn on the CPU first, so it is the same on every device)."""
    with gzip.open(_digits_file(), "rt") as f:
        rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
    table = torch.tensor(rows)
    images = table[:, :64].reshape(-1, 1, 8, 8) / 16.0
    labels = table[:, 64].long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    images, labels = images[order], labels[order]
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    return {
        "train": (images[:1200], labels[:1200]),
        "val": (images[1200:1500], labels[1200:1500]),
        "test": (images[1500:], labels[1500:]),
    }


def batches(images: torch.Tensor, labels: torch.Tensor, size: int, generator: torch.Generator):
    # drawn on the CPU from the CPU generator (same batches on every device), then moved once
    order = torch.randperm(len(labels), generator=generator).to(images.device)
    for start in range(0, len(labels), size):
        index = order[start : start + size]
        yield images[index], labels[index]


def train_epoch(model, optimizer, images, labels, generator, batch_size: int = 64) -> float:
    model.train()
    total = 0.0
    for x, y in batches(images, labels, batch_size, generator):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    return total / len(labels)


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    model.eval()
    return (model(images).argmax(dim=1) == labels).float().mean().item()
