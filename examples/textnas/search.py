"""Search the TextNAS space with ENAS on the synthetic text task (``data.py``), on a CPU.

    python examples/textnas/search.py                      # ~2 min on 2 CPU cores
    python examples/textnas/retrain.py --arch examples/textnas/logs/enas/architecture.json
    python examples/textnas/compare.py                     # the search against random architectures

As in NNI, the TextNAS search is ENAS: the trainer is the one of ``examples/oneshot`` and takes
text batches ``((ids, mask), labels)`` as they come. The search log goes to
examples/textnas/logs/enas/ (``nasctl view-nas --logdir examples/textnas/logs/enas``) and ends
with architecture.json. ``--resume`` continues an interrupted search from its checkpoint. The
accuracies printed during the search are the super-net's; only retraining says how good the
exported architecture is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import HERE, build_network, common_parser, load_splits, setup

from trials.nas.oneshot import EnasTrainer


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__ or "")
    parser.add_argument("--controller-lr", type=float, default=3e-3, help="Adam lr of the controller")
    parser.add_argument("--controller-steps", type=int, default=40, help="architectures per controller phase")
    parser.add_argument("--logdir", type=Path, help="search log folder (default logs/enas)")
    parser.add_argument("--resume", action="store_true", help="continue from the log folder's checkpoint")
    parser.set_defaults(epochs=10)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[dict, dict[str, float], Path]:
    """Search; returns the architecture, its wall and CPU seconds, and the log folder."""
    setup(args)
    splits = load_splits(args)
    model = build_network(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    trainer = EnasTrainer(
        model,
        train_data=splits["train"],
        valid_data=splits["valid"],
        num_epochs=args.epochs,
        optimizer=optimizer,
        controller_lr=args.controller_lr,
        controller_steps=args.controller_steps,
        controller_aggregate=5,
        export_samples=10,
        device=args.device,
        log_dir=args.logdir or HERE / "logs" / "enas",
        log_every=20,
        resume=args.resume,
        progress=not args.quiet,
        seed=args.seed,
    )
    start, cpu = time.perf_counter(), time.process_time()
    architecture = trainer.fit()
    seconds = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    assert trainer.log is not None
    return architecture, seconds, trainer.log.directory


def main() -> None:
    args = parse()
    try:
        architecture, seconds, logdir = run(args)
    except ValueError as error:  # a setting the trainer refuses: its one line, no traceback
        raise SystemExit(f"error: {error}") from None
    root = HERE.parent.parent
    shown = logdir.relative_to(root) if logdir.is_relative_to(root) else logdir
    ops = ", ".join(v["_value"] for key, v in architecture.items() if key.endswith("_op"))
    print(f"search time: {seconds['wall_s']:.1f} s ({seconds['cpu_s']:.1f} s of CPU)")
    print(f"operations:  {ops}")
    print(f"architecture: {shown / 'architecture.json'}")
    print(f"retrain it:   python examples/textnas/retrain.py --arch {shown / 'architecture.json'}")


if __name__ == "__main__":
    main()
