"""Search a DARTS-cell (or NAS-Bench-201) network on scikit-learn's digits with a one-shot trainer.

    python examples/oneshot/search.py --algorithm darts            # ~3 min on 2 CPU cores
    python examples/oneshot/search.py --algorithm enas
    python examples/oneshot/search.py --algorithm spos --space nb201
    python examples/oneshot/search.py --algorithm darts --device cuda --amp --data synthetic-cifar \\
        --channels 16 --layers 8 --nodes 4 --batch-size 96        # the paper's search network, on a GPU

Each run writes its search log to examples/oneshot/logs/<algorithm>-<space>/ (view it with
``nasctl view-nas --logdir DIR``), ending with architecture.json, which ``retrain.py``
trains from scratch. ``--resume`` continues an interrupted search from its checkpoint.
The accuracies printed during the search are the super-net's, not the architecture's:
only retraining says how good the exported architecture is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import HERE, build_model, common_parser, load_data, loader, setup, trainer_arguments

from trials.nas.oneshot import DartsTrainer, EnasTrainer, OneShotTrainer, SposTrainer

#: Epochs per algorithm when --epochs is not given (digits, 2 CPU cores, a few minutes each).
DEFAULT_EPOCHS = {"darts": 8, "enas": 12, "spos": 12}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__ or "")
    parser.add_argument("--algorithm", choices=("darts", "enas", "spos"), required=True)
    parser.add_argument(
        "--arch-lr", type=float, default=3e-3, help="DARTS: Adam lr of the architecture weights"
    )
    parser.add_argument("--unrolled", action="store_true", help="DARTS: second-order approximation")
    parser.add_argument("--controller-lr", type=float, default=3e-3, help="ENAS: Adam lr of the controller")
    parser.add_argument(
        "--controller-steps", type=int, default=40, help="ENAS: architectures per controller phase"
    )
    parser.add_argument("--population", type=int, default=20, help="SPOS: population size")
    parser.add_argument("--generations", type=int, default=6, help="SPOS: generations after the first")
    parser.set_defaults(epochs=None)
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.algorithm]
    return args


def make_trainer(args: argparse.Namespace) -> OneShotTrainer:
    data = load_data(args)
    train_x, train_y = data["train"]
    model = build_model(args)
    if args.algorithm == "darts":
        # DARTS' bilevel optimisation: the weights learn on one half, the architecture on the other
        half = len(train_y) // 2
        train = loader(train_x[:half], train_y[:half], args.batch_size, shuffle=True)
        valid = loader(train_x[half:], train_y[half:], args.batch_size, shuffle=True)
        common = trainer_arguments(args, model, train, valid, "darts")
        return DartsTrainer(model, arch_lr=args.arch_lr, unrolled=args.unrolled, **common)
    train = loader(train_x, train_y, args.batch_size, shuffle=True)
    valid = loader(*data["val"], args.batch_size, shuffle=True)
    common = trainer_arguments(args, model, train, valid, args.algorithm)
    if args.algorithm == "enas":
        return EnasTrainer(
            model,
            controller_lr=args.controller_lr,
            controller_steps=args.controller_steps,
            controller_aggregate=5,
            export_samples=10,
            **common,
        )
    return SposTrainer(
        model,
        population_size=args.population,
        generations=args.generations,
        parents=max(2, args.population // 4),
        bn_batches=5,
        **common,
    )


def run(args: argparse.Namespace) -> tuple[dict, dict[str, float], Path]:
    """Search; returns the architecture, its wall and CPU seconds, and the log folder.

    CPU seconds are this process's own, so they hold still when other programs share the cores.
    """
    setup(args)
    trainer = make_trainer(args)
    start, cpu = time.perf_counter(), time.process_time()
    architecture = trainer.fit()
    seconds = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    assert trainer.log is not None
    return architecture, seconds, trainer.log.directory


def main() -> None:
    args = parse()
    _, seconds, logdir = run(args)
    shown = logdir.relative_to(HERE.parent.parent) if logdir.is_relative_to(HERE.parent.parent) else logdir
    print(f"search time: {seconds['wall_s']:.1f} s ({seconds['cpu_s']:.1f} s of CPU)")
    print(f"architecture: {shown / 'architecture.json'}")
    shape = "".join(
        f" --{name} {getattr(args, name)}" for name in ("layers", "nodes") if getattr(args, name) != 3
    )
    print(
        f"retrain it:   python examples/oneshot/retrain.py --space {args.space}{shape} "
        f"--arch {shown / 'architecture.json'}"
    )


if __name__ == "__main__":
    main()
