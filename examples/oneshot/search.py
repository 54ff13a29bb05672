"""Search a DARTS-cell (or NAS-Bench-201) network on scikit-learn's digits with a one-shot trainer.

    python examples/oneshot/search.py --algorithm darts            # ~3 min on 2 CPU cores
    python examples/oneshot/search.py --algorithm enas
    python examples/oneshot/search.py --algorithm spos --space nb201
    python examples/oneshot/search.py --algorithm pdarts           # 3 stages of 3, 5, 7 cells
    python examples/oneshot/search.py --algorithm cdarts           # search 3 cells, evaluation 5 cells
    python examples/oneshot/search.py --algorithm proxyless --space proxyless   # with a latency term
    python examples/oneshot/latency_sweep.py          # ProxylessNAS at latency weights 0, 0.1, 1, 10
    python examples/oneshot/search.py --algorithm darts --tensorboard   # also TensorBoard events in the log
    python examples/oneshot/search.py --algorithm darts --device cuda --amp --data synthetic-cifar \\
        --channels 16 --layers 8 --nodes 4 --batch-size 96        # the paper's search network, on a GPU

Each run writes its search log to examples/oneshot/logs/<algorithm>-<space>/ (view it with
``nasctl view-nas --logdir DIR``, or ``tensorboard --logdir DIR/tensorboard`` after a run with
``--tensorboard``), ending with architecture.json, which ``retrain.py``
trains from scratch. ``--resume`` continues an interrupted search from its checkpoint.
The accuracies printed during the search are the super-net's, not the architecture's:
only retraining says how good the exported architecture is.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from common import (
    HERE,
    build_model,
    common_parser,
    load_data,
    loader,
    make_optimizer,
    make_schedule,
    setup,
    trainer_arguments,
    training_arguments,
    write_json,
)

from trials.nas.oneshot import (
    CdartsTrainer,
    DartsTrainer,
    EnasTrainer,
    LatencyTable,
    OneShotTrainer,
    PdartsTrainer,
    ProxylessTrainer,
    SposTrainer,
    TensorBoardCallback,
    bind_choices,
)

ALGORITHMS = ("darts", "enas", "spos", "pdarts", "cdarts", "proxyless")
#: Epochs per algorithm when --epochs is not given (digits, 2 CPU cores, a few minutes each);
#: for P-DARTS the epochs of each stage.
DEFAULT_EPOCHS = {"darts": 8, "enas": 12, "spos": 12, "pdarts": 4, "cdarts": 8, "proxyless": 30}
#: Epochs at the start that train only the network's weights (P-DARTS: of each stage).
DEFAULT_WARMUP = {"pdarts": 1, "cdarts": 2, "proxyless": 10}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__ or "")
    parser.add_argument("--algorithm", choices=ALGORITHMS, required=True)
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
    parser.add_argument(
        "--depths", help="P-DARTS: cells of each stage's network, e.g. 5,11,17 (default: --layers, +2, +4)"
    )
    parser.add_argument(
        "--eval-layers", type=int, help="CDARTS: cells of the evaluation network (default: --layers + 2)"
    )
    parser.add_argument(
        "--warmup", type=int, help="P-DARTS, CDARTS: epochs that train only the weights (P-DARTS: per stage)"
    )
    parser.add_argument(
        "--latency-weight", type=float, default=0.1, help="ProxylessNAS: weight of the expected latency"
    )
    parser.add_argument(
        "--latency-mode", choices=("additive", "multiplicative"), default="additive", help="ProxylessNAS"
    )
    parser.add_argument(
        "--latency-table",
        type=Path,
        help="ProxylessNAS: a latency table JSON to use (default: profile one on this machine)",
    )
    parser.add_argument(
        "--tensorboard", action="store_true", help="also write TensorBoard events to <logdir>/tensorboard"
    )
    parser.set_defaults(epochs=None)
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.algorithm]
    if args.warmup is None:  # never all of a (P-DARTS: stage's) epochs
        args.warmup = min(DEFAULT_WARMUP.get(args.algorithm, 0), max(args.epochs - 1, 0))
    if (args.algorithm == "proxyless") != (args.space == "proxyless"):
        parser.error(
            "--algorithm proxyless and --space proxyless go together (its blocks have no input choices)"
        )
    if args.algorithm == "pdarts" and args.space != "darts":
        parser.error("--algorithm pdarts searches the darts space (its stages deepen a DARTS-cell network)")
    try:
        args.depths = (
            [int(d) for d in args.depths.split(",")] if args.depths else [args.layers + k for k in (0, 2, 4)]
        )
    except ValueError:
        parser.error(f"--depths: give cell counts separated by commas, e.g. 5,11,17; got {args.depths!r}")
    if args.eval_layers is None:
        args.eval_layers = args.layers + 2
    return args


def stage_defaults(stages: int) -> dict[str, Any]:
    """P-DARTS' drops and skip-connect dropout for ``stages`` stages: the paper's for three."""
    if stages == 3:
        return {"num_to_drop": (3, 2), "skip_dropout": (0.1, 0.4, 0.7)}
    drops = [3, 2, 1] + [0] * stages  # 7 candidates: 4, 2, 1 left
    rates = [round(0.1 + 0.6 * i / max(stages - 1, 1), 2) for i in range(stages)]
    return {"num_to_drop": tuple(drops[: stages - 1]), "skip_dropout": tuple(rates)}


def make_trainer(args: argparse.Namespace) -> OneShotTrainer:
    data = load_data(args)
    train_x, train_y = data["train"]
    callbacks = [TensorBoardCallback()] if args.tensorboard else []
    if args.algorithm in ("darts", "pdarts", "cdarts"):
        # bilevel optimisation: the weights learn on one half, the architecture on the other
        half = len(train_y) // 2
        train = loader(train_x[:half], train_y[:half], args.batch_size, shuffle=True)
        valid = loader(train_x[half:], train_y[half:], args.batch_size, shuffle=True)
        darts = {"arch_lr": args.arch_lr, "unrolled": args.unrolled}
        if args.algorithm == "pdarts":
            return make_pdarts(args, train, valid, callbacks, darts)
        model = build_model(args)
        common = trainer_arguments(args, train, valid, args.algorithm, callbacks)
        common.update(training_arguments(args, model))
        if args.algorithm == "darts":
            return DartsTrainer(model, **darts, **common)
        eval_model = build_model(args, retrain=True, layers=args.eval_layers)
        eval_optimizer = make_optimizer(args, eval_model.parameters())
        return CdartsTrainer(
            model,
            eval_model,
            eval_optimizer=eval_optimizer,
            eval_lr_scheduler=make_schedule(eval_optimizer, args.epochs),
            warmup_epochs=args.warmup,
            **darts,
            **common,
        )
    model = build_model(args)
    train = loader(train_x, train_y, args.batch_size, shuffle=True)
    valid = loader(*data["val"], args.batch_size, shuffle=True)
    common = trainer_arguments(args, train, valid, args.algorithm, callbacks)
    common.update(training_arguments(args, model))
    if args.algorithm == "proxyless":
        return make_proxyless(args, model, train_x[: args.batch_size], common)
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


def make_pdarts(
    args: argparse.Namespace, train: Any, valid: Any, callbacks: list[Any], darts: dict[str, Any]
) -> PdartsTrainer:
    """P-DARTS builds a new, deeper network for each stage, with a new optimizer and schedule."""
    return PdartsTrainer(
        lambda depth: build_model(args, layers=depth),
        depths=args.depths,
        **stage_defaults(len(args.depths)),
        epochs_per_stage=args.epochs,
        warmup_epochs=args.warmup,
        optimizer_factory=lambda params: make_optimizer(args, params),
        lr_scheduler_factory=make_schedule,
        **darts,
        **trainer_arguments(args, train, valid, "pdarts", callbacks),
    )


def make_proxyless(
    args: argparse.Namespace, model: Any, example: Any, common: dict[str, Any]
) -> ProxylessTrainer:
    """ProxylessNAS with a latency table of this machine, profiled at the start of a search and kept
    as ``latency.json`` in the log folder; ``--resume`` reads it back, so the objective stays the same."""
    path = Path(common["log_dir"]) / "latency.json"
    if args.latency_table is not None:  # the user's table (measured elsewhere, or edited)
        table = LatencyTable.load(args.latency_table)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    elif args.resume and path.exists():
        table = LatencyTable.load(path)
    else:
        _, groups = bind_choices(model)
        table = LatencyTable.profile(model, groups, example, device=args.device)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    return ProxylessTrainer(
        model,
        latency_table=table,
        latency_weight=args.latency_weight,
        latency_mode=args.latency_mode,
        warmup_epochs=args.warmup,
        arch_lr=args.arch_lr,
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
    if isinstance(trainer, ProxylessTrainer):  # what the export costs: by the table, and timed
        example = load_data(args)["val"][0][: args.batch_size]
        write_json(trainer.log.directory / "latency_report.json", trainer.latency_report(example))
    return architecture, seconds, trainer.log.directory


def main() -> None:
    args = parse()
    try:
        _, seconds, logdir = run(args)
    except ValueError as error:  # a setting the trainer refuses: its one line, no traceback
        raise SystemExit(f"error: {error}") from None
    shown = logdir.relative_to(HERE.parent.parent) if logdir.is_relative_to(HERE.parent.parent) else logdir
    print(f"search time: {seconds['wall_s']:.1f} s ({seconds['cpu_s']:.1f} s of CPU)")
    if (logdir / "latency_report.json").exists():
        report = json.loads((logdir / "latency_report.json").read_text())
        print(
            f"latency (batch {args.batch_size}): expected {report['expected']:.2f} ms, "
            f"exported by the table {report['exported']:.2f} ms, "
            f"exported as measured {report['measured_ms']:.2f} ms"
        )
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
