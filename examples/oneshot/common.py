"""What the one-shot examples share: data, the search spaces, and the command-line options.

Data: scikit-learn's digits (8x8 grey images, shipped with scikit-learn, so nothing is
downloaded), split as in ``examples/digits``: 1,200 training, 300 validation, 297 test
images. The search never sees the test images; ``retrain.py`` reports accuracy on them.
``--data synthetic-cifar`` swaps in random CIFAR-shaped images (3x32x32, ten classes, each
class a fixed pattern under noise) for timing runs on a GPU.

Spaces: ``darts`` (a DARTS-cell network), ``nb201`` (the NAS-Bench-201 network) and
``proxyless`` (ProxylessNAS' inverted-residual blocks), all from ``trials.nas.zoo``, sized for digits on a CPU unless ``--channels``/``--layers`` say
otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trials.nas.zoo import DartsNetwork, NASBench201Network, ProxylessNASNetwork

HERE = Path(__file__).resolve().parent
SPACES = ("darts", "nb201", "proxyless")


def _digits_module() -> Any:
    """``examples/digits/data.py``, loaded by path (its name would clash with other ``data`` modules)."""
    spec = importlib.util.spec_from_file_location("digits_data", HERE.parent / "digits" / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_cifar(samples: int, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """CIFAR-shaped images: one fixed random pattern per class plus noise (learnable, not trivial)."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(10, 3, 32, 32, generator=g)
    total = samples + samples // 5 * 2
    labels = torch.randint(0, 10, (total,), generator=g)
    images = 0.5 * patterns[labels] + torch.randn(total, 3, 32, 32, generator=g)
    val_end = samples + samples // 5
    return {
        "train": (images[:samples], labels[:samples]),
        "val": (images[samples:val_end], labels[samples:val_end]),
        "test": (images[val_end:], labels[val_end:]),
    }


def load_data(args: argparse.Namespace) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    if args.data == "digits":
        return _digits_module().load_splits(seed=0)
    return synthetic_cifar(args.samples)


def in_channels(args: argparse.Namespace) -> int:
    return 1 if args.data == "digits" else 3


def build_model(args: argparse.Namespace, retrain: bool = False, layers: int | None = None) -> nn.Module:
    """The search space's super-net (``retrain``: BatchNorm with learned scales, as for training an
    architecture); ``layers`` overrides ``--layers`` (P-DARTS' stages, CDARTS' evaluation network)."""
    if args.space == "darts":
        return DartsNetwork(
            in_channels(args),
            args.channels,
            10,
            n_layers=layers if layers is not None else args.layers,
            n_nodes=args.nodes,
            affine=retrain,
        )
    if args.space == "proxyless":
        return proxyless_network(args, layers if layers is not None else args.layers)
    return NASBench201Network(
        args.channels, layers if layers is not None else args.layers, 10, in_channels(args)
    )


def proxyless_network(args: argparse.Namespace, layers: int) -> nn.Module:
    """ProxylessNAS' space sized for small images: two stages of ``layers`` blocks, widths
    ``2 * --channels`` and ``4 * --channels``, kernels 3 and 5 (on digits a block with all six
    candidates trains its shared weights far more slowly), expansions 3 and 6, ``zero`` where residual."""
    c = 2 * args.channels
    return ProxylessNASNetwork(
        n_classes=10,
        in_channels=in_channels(args),
        stage_widths=(c, 2 * c),
        stage_depths=(layers, layers),
        stage_strides=(2, 1) if args.data == "digits" else (2, 2),
        stem_channels=c,
        stem_stride=1,
        first_channels=c,
        last_channels=4 * c,
        kernels=(3, 5),
        expansions=(3, 6),
    )


def loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader:
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


def common_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", choices=SPACES, default="darts", help="search space (default darts)")
    parser.add_argument("--data", choices=("digits", "synthetic-cifar"), default="digits")
    parser.add_argument("--samples", type=int, default=10000, help="training images of synthetic-cifar")
    parser.add_argument("--channels", type=int, default=8, help="channels of the first cell")
    parser.add_argument(
        "--layers", type=int, default=3, help="DARTS: cells; NB201, proxyless: cells or blocks per stage"
    )
    parser.add_argument("--nodes", type=int, default=3, help="DARTS: intermediate nodes per cell")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05, help="weights: SGD learning rate (cosine)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for torch (tiny nets run best on 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", type=Path, help="search log folder (default logs/<algorithm>-<space>)")
    parser.add_argument("--resume", action="store_true", help="continue from the log folder's checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def setup(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    if str(args.device).startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels


def trainer_arguments(
    args: argparse.Namespace, train: Any, valid: Any, algorithm: str, callbacks: Sequence[Any] = ()
) -> dict:
    """The arguments every trainer takes, from the command line (the optimizer aside)."""
    return {
        "train_data": train,
        "valid_data": valid,
        "device": args.device,
        "mixed_precision": args.amp,
        "log_dir": args.logdir or HERE / "logs" / f"{algorithm}-{args.space}",
        "log_every": 5,
        "resume": args.resume,
        "progress": not args.quiet,
        "seed": args.seed,
        "callbacks": list(callbacks),
    }


def make_optimizer(args: argparse.Namespace, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD with momentum, DARTS' setting, at ``--lr``."""
    return torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=3e-4)


def make_schedule(optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """Cosine annealing over ``epochs``, to 1e-3."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1), eta_min=1e-3)


def training_arguments(args: argparse.Namespace, model: nn.Module) -> dict:
    """Epochs, optimizer and schedule of a trainer that trains one network throughout."""
    optimizer = make_optimizer(args, model.parameters())
    return {
        "num_epochs": args.epochs,
        "optimizer": optimizer,
        "lr_scheduler": make_schedule(optimizer, args.epochs),
    }


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")
