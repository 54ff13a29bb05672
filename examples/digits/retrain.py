"""Retrain an exported architecture from scratch, longer, and report test accuracy.

    python retrain.py --arch best_architecture.json [--epochs 30]

The architecture file is what ``nasctl`` exports (the ``{"_value", "_idx"}`` form) or the
short form ``{"conv1": "conv5x5", "skip": ["conv1"], ...}``. Unused candidates are dropped
from the model, so it trains and saves only the chosen operations.
"""

from __future__ import annotations

import argparse

import torch
from data import accuracy, load_splits, train_epoch
from model import DigitsNet

from trials.nas import apply_fixed_architecture


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", required=True, help="architecture JSON file")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained state dict here")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    model = DigitsNet()
    arch = apply_fixed_architecture(model, args.arch)
    n_params = sum(p.numel() for p in model.parameters())
    print("architecture:", {key: value["_value"] for key, value in arch.items()}, f"({n_params} parameters)")

    data = load_splits()
    train_x = torch.cat([data["train"][0], data["val"][0]])
    train_y = torch.cat([data["train"][1], data["val"][1]])
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        loss = train_epoch(model, optimizer, train_x, train_y, generator)
        scheduler.step()
        if epoch % 5 == 0 or epoch == args.epochs:
            print(f"epoch {epoch}: loss {loss:.4f}", flush=True)
    test_acc = accuracy(model, *data["test"])
    print(f"test accuracy: {test_acc:.4f}")
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
