"""Make the learning-curve table the early-stopping bench replays: every digits architecture, trained.

Each of the 96 architectures of ``examples/digits`` (conv1 x conv2 x skip x conv3, enumerated by
the GridSearch tuner from the model's own search space) is trained on the CPU for ``--epochs``
epochs (default 6, the example's own default) once per training seed, with the example's model,
data split, optimizer settings and ``train_epoch``/``accuracy`` (imported, not copied), one torch
thread. Per epoch the table keeps the validation accuracy (what the example reports as its
intermediate result) and the seconds that epoch's training took, so a replay can charge early
stopping with real, per-architecture costs. Nothing is downloaded: the data ship with scikit-learn.

Usage: ``python bench/make_digits_curves.py [--seeds 2] [--epochs 6] [--out bench/data/digits_curves.json]``
(about 2 minutes per seed at 6 epochs on one core). Run by hand; the shipped tables are its output:
``digits_curves.json`` (the defaults, 199 s) and ``digits_curves_e20.json`` (``--epochs 20``, 515 s:
long enough for Curvefitting's default ``start_step`` of 6 to leave it something to judge).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "examples" / "digits"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402
from data import accuracy, load_splits, train_epoch  # noqa: E402
from model import DigitsNet  # noqa: E402

from manager.config import TunerConfig  # noqa: E402
from manager.tuners.base import NoMoreTrials  # noqa: E402
from manager.tuners.registry import create_tuner  # noqa: E402
from trials.nas import apply_fixed_architecture  # noqa: E402
from trials.nas.classic import dump_search_space  # noqa: E402
from trials.searchspace import SearchSpace  # noqa: E402

FORMAT = "nasctl.digits-curves/1"
#: The example's defaults (``examples/digits/model.py``'s arguments).
EXAMPLE_EPOCHS = 6
EXAMPLE_LR = 3e-3
DEFAULT_OUT = REPO / "bench" / "data" / "digits_curves.json"


def architectures() -> list[dict[str, Any]]:
    """Every architecture of the digits space, short form (``{"conv1": "conv3x3", "skip": [], ...}``)."""
    space = SearchSpace.from_json(dump_search_space(DigitsNet()))
    tuner = create_tuner(TunerConfig(name="GridSearch", class_args={}))
    tuner.update_search_space(space)
    found: list[dict[str, Any]] = []
    while True:
        try:
            parameters = tuner.generate_parameters(len(found))
        except NoMoreTrials:
            return found
        found.append({key: value["_value"] for key, value in parameters.items()})


def train_curve(
    arch: dict[str, Any], seed: int, epochs: int, data: dict[str, Any]
) -> tuple[list[float], list[float]]:
    """(validation accuracy per epoch, training seconds per epoch) of one architecture and seed."""
    torch.manual_seed(seed)
    model = DigitsNet()
    apply_fixed_architecture(model, arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=EXAMPLE_LR)
    generator = torch.Generator().manual_seed(seed)
    accuracies, seconds = [], []
    for _ in range(epochs):
        started = time.perf_counter()
        train_epoch(model, optimizer, *data["train"], generator)
        seconds.append(round(time.perf_counter() - started, 4))
        accuracies.append(round(accuracy(model, *data["val"]), 4))
    return accuracies, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=2, help="training seeds 0..N-1 (default 2)")
    parser.add_argument(
        "--epochs", type=int, default=EXAMPLE_EPOCHS, help="epochs (default: the example's 6)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON table to write")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be at least 1")
    torch.set_num_threads(1)
    data = load_splits()
    archs = architectures()
    rows: list[dict[str, Any]] = [{"arch": arch, "runs": []} for arch in archs]
    total = len(archs) * args.seeds
    started = time.perf_counter()
    done = 0
    for seed in range(args.seeds):
        for row in rows:
            acc, secs = train_curve(row["arch"], seed, args.epochs, data)
            row["runs"].append({"seed": seed, "accuracy": acc, "seconds": secs})
            done += 1
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (total - done)
            print(
                f"[{done}/{total}] seed {seed} {_label(row['arch'])}: final {acc[-1]:.4f} "
                f"in {sum(secs):.2f} s (elapsed {elapsed:.0f} s, eta {eta:.0f} s)",
                flush=True,
            )
    elapsed = time.perf_counter() - started
    table = {
        "format": FORMAT,
        "epochs": args.epochs,
        "seeds": list(range(args.seeds)),
        "lr": EXAMPLE_LR,
        "metric": "validation accuracy after each epoch (examples/digits, 300 images)",
        "search_space": dump_search_space(DigitsNet()),
        "made": {
            "seconds": round(elapsed, 1),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "threads": 1,
        },
        "architectures": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_compact_json(table))
    print(f"{total} curves in {elapsed:.0f} s -> {args.out}")
    return 0


def _label(arch: dict[str, Any]) -> str:
    return " ".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}" for k, v in arch.items())


def _compact_json(table: dict[str, Any]) -> str:
    """One line per architecture: small to ship, readable in a diff."""
    head = {k: v for k, v in table.items() if k != "architectures"}
    lines = [json.dumps(row, separators=(",", ":")) for row in table["architectures"]]
    body = json.dumps(head, separators=(",", ":"))[:-1]
    return body + ',"architectures":[\n' + ",\n".join(lines) + "\n]}\n"


if __name__ == "__main__":
    sys.exit(main())
