"""Train one architecture of the search space from scratch and print its test accuracy.

    python examples/oneshot/retrain.py --arch examples/oneshot/logs/darts-darts/architecture.json
    python examples/oneshot/retrain.py --random 0          # a random architecture of the same space
    python examples/oneshot/retrain.py --space nb201 --arch examples/oneshot/logs/spos-nb201/architecture.json

``apply_fixed_architecture`` turns the super-net into the plain network of the chosen
operations (unused candidates are dropped), which trains on the training and validation
images together; the test images, never seen by the search, give the accuracy. The network
is wider than the search's (``--channels 16``) and its BatchNorm layers learn their scales,
as in DARTS' retraining. Use the same ``--space``, ``--layers`` and ``--nodes`` as the search.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.nn.functional as F
from common import build_model, common_parser, load_data, loader, setup

from trials.nas import apply_fixed_architecture
from trials.nas.oneshot.choices import random_architecture_of


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__ or "")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="architecture JSON file (what a search exports)")
    which.add_argument(
        "--random", type=int, metavar="SEED", help="train a random architecture drawn with SEED"
    )
    parser.set_defaults(epochs=20, channels=16)
    return parser.parse_args(argv)


def retrain(args: argparse.Namespace, arch: str | dict[str, Any]) -> dict[str, Any]:
    """Train ``arch`` from scratch; returns test accuracy, parameters, seconds and the architecture."""
    setup(args)
    device = torch.device(args.device)
    model = build_model(args, retrain=True)
    architecture = apply_fixed_architecture(model, arch)
    model.to(device)
    params = None
    data = load_data(args)
    train_x = torch.cat([data["train"][0], data["val"][0]])
    train_y = torch.cat([data["train"][1], data["val"][1]])
    train = loader(train_x, train_y, args.batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=3e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    start, cpu = time.perf_counter(), time.process_time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for x, y in train:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if params is None:  # what the architecture uses (a DARTS node keeps 2 of its edges)
                params = sum(p.numel() for p in model.parameters() if p.grad is not None)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            total, seen = total + loss.item() * len(y), seen + len(y)
        scheduler.step()
        if not args.quiet and (epoch % 5 == 0 or epoch == args.epochs):
            print(f"epoch {epoch}/{args.epochs}: loss {total / seen:.4f}", flush=True)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    model.eval()
    correct = 0
    test_x, test_y = data["test"]
    with torch.no_grad():
        for x, y in loader(test_x, test_y, 256, shuffle=False):
            correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
    return {
        "test_acc": correct / len(test_y),
        "params": params,
        "train_wall_s": seconds,
        "train_cpu_s": cpu_seconds,
        "architecture": architecture,
    }


def main() -> None:
    args = parse()
    arch = args.arch if args.arch is not None else random_architecture_of(build_model(args), args.random)
    result = retrain(args, arch)
    print("architecture:", {key: value["_value"] for key, value in result["architecture"].items()})
    print(
        f"parameters: {result['params']}, training time: {result['train_wall_s']:.1f} s "
        f"({result['train_cpu_s']:.1f} s of CPU)"
    )
    print(f"test accuracy: {result['test_acc']:.4f}")


if __name__ == "__main__":
    main()
