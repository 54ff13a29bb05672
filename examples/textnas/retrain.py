"""Train one architecture of the TextNAS space from scratch and print its test accuracy.

    python examples/textnas/retrain.py --arch examples/textnas/logs/enas/architecture.json
    python examples/textnas/retrain.py --random 0     # a random architecture of the same space

``apply_fixed_architecture`` turns the super-net into the plain network of the chosen
operations, inputs and skips; it trains on the training and validation sequences together
and is scored on the test sequences, which the search never saw. Use the same ``--layers``,
``--hidden`` and ``--k`` as the search.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.nn.functional as F
from common import build_network, common_parser, load_splits, setup

from trials.nas import apply_fixed_architecture
from trials.nas.oneshot.choices import random_architecture_of


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__ or "")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="architecture JSON file (what a search exports)")
    which.add_argument(
        "--random", type=int, metavar="SEED", help="train a random architecture drawn with SEED"
    )
    return parser.parse_args(argv)


def retrain(args: argparse.Namespace, arch: str | dict[str, Any]) -> dict[str, Any]:
    """Train ``arch`` from scratch; returns test accuracy, seconds, operations and the architecture."""
    setup(args)
    device = torch.device(args.device)
    model = build_network(args)
    architecture = apply_fixed_architecture(model, arch)
    model.to(device)
    splits = load_splits(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for (ids, mask), labels in splits["train"] + splits["valid"]:
            loss = F.cross_entropy(model((ids.to(device), mask.to(device))), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(labels), seen + len(labels)
        if not args.quiet and (epoch % 2 == 0 or epoch == args.epochs):
            print(f"epoch {epoch}/{args.epochs}: loss {total / seen:.4f}", flush=True)
    seconds = time.perf_counter() - start
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for (ids, mask), labels in splits["test"]:
            predicted = model((ids.to(device), mask.to(device))).argmax(1).cpu()
            correct, seen = correct + int((predicted == labels).sum()), seen + len(labels)
    return {
        "test_acc": correct / seen,
        "train_wall_s": seconds,
        "ops": [v["_value"] for key, v in architecture.items() if key.endswith("_op")],
        "architecture": architecture,
    }


def main() -> None:
    args = parse()
    arch = args.arch if args.arch is not None else random_architecture_of(build_network(args), args.random)
    try:
        result = retrain(args, arch)
    except (ValueError, OSError) as error:  # a wrong file or an architecture of another space
        raise SystemExit(f"error: {error}") from None
    print(f"operations: {', '.join(result['ops'])}")
    print(
        f"test accuracy: {result['test_acc']:.4f} (chance 0.25; {result['train_wall_s']:.0f} s of training)"
    )


if __name__ == "__main__":
    main()
