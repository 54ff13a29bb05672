"""What the TextNAS example's scripts share: the data splits, the network and the options.

Data: the synthetic task of ``data.py`` (four classes, chance 0.25), generated from fixed
seeds: 3,200 training, 960 validation and 960 test sequences. The search never sees the test
sequences; ``retrain.py`` reports accuracy on them.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from data import N_CLASSES, PAD, Batch, make_batches
from torch import nn

from trials.nas.zoo import TextNASNetwork

HERE = Path(__file__).resolve().parent
VOCAB = 32
SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}


def load_splits(args: argparse.Namespace) -> dict[str, list[Batch]]:
    """Batches of ``--batch-size`` for each split; ``--train-batches`` sets the training size and
    the other splits get 30 % of it each."""
    held_out = max(1, round(0.3 * args.train_batches))
    sizes = {"train": args.train_batches, "valid": held_out, "test": held_out}
    return {
        name: make_batches(sizes[name], args.batch_size, seed=seed, vocab_size=VOCAB)
        for name, seed in SPLIT_SEEDS.items()
    }


def build_network(args: argparse.Namespace) -> TextNASNetwork:
    """The TextNAS super-net around a learned embedding (the user's part, as in NNI)."""
    return TextNASNetwork(
        nn.Embedding(VOCAB, args.embed, padding_idx=PAD),
        hidden=args.hidden,
        n_layers=args.layers,
        k=args.k,
        n_classes=N_CLASSES,
        dropout=args.dropout,
        heads=4,
    )


def common_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=4, help="TextNAS layers (24 in the paper)")
    parser.add_argument("--hidden", type=int, default=32, help="channels of every layer")
    parser.add_argument("--embed", type=int, default=16, help="embedding size")
    parser.add_argument("--k", type=int, default=2, help="a layer reads one of the previous k outputs")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-batches", type=int, default=100, help="training batches per epoch")
    parser.add_argument("--lr", type=float, default=3e-3, help="weights: Adam learning rate")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def setup(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
