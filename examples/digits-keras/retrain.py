"""Retrain an exported architecture from scratch, longer, and report test accuracy.

    python retrain.py --arch best_architecture.json [--epochs 30]

The architecture file is what ``nasctl`` (or the ENAS search in search_enas.py) exports, in the
``{"_value", "_idx"}`` form, or the short form ``{"conv1": "conv5x5", "skip": ["conv1"], ...}``.
Unused candidates are never called, so they are never built: the model holds only the chosen
operations' weights.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
from data import load_splits
from model import DigitsNet, compile_model

from trials.nas.tensorflow import apply_fixed_architecture


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", required=True, help="architecture JSON file")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained weights here (a .weights.h5 file)")
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)

    model = DigitsNet()
    arch = apply_fixed_architecture(model, args.arch)
    data = load_splits()
    train_x = np.concatenate([data["train"][0], data["val"][0]])
    train_y = np.concatenate([data["train"][1], data["val"][1]])
    compile_model(model, args.lr)
    model.fit(train_x, train_y, batch_size=64, epochs=args.epochs, shuffle=True, verbose=0)
    n_params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print("architecture:", {key: value["_value"] for key, value in arch.items()}, f"({n_params} parameters)")
    test_acc = float(model.evaluate(*data["test"], verbose=0, return_dict=True)["accuracy"])
    print(f"test accuracy: {test_acc:.4f}")
    if args.save:
        model.save_weights(args.save)


if __name__ == "__main__":
    main()
