"""What one DARTS search step costs: operator calls that do work, peak memory, time.

The step is the paper's first-order search step on its search network (8 cells, 4 nodes, 16
channels, 10 classes, 3x32x32 inputs, batch 32): an architecture step (Adam on alpha, on a
validation batch) then a weight step (SGD with momentum and weight decay, gradient norm
clipped at 5, on a training batch), on the CPU with one thread. Each side runs in its own
process, so each peak RSS is its own:

* **nasctl**: this tree, ``DartsTrainer.train_epoch`` over one batch;
* **base**: the same at ``--base REV`` (default: the revision before the step was reworked),
  exported from git into a temporary folder and imported from there;
* **NNI 3.0**, when ``--nni-python PATH`` names a Python with ``nni`` (and ``pytorch_lightning``)
  installed: NNI's own DARTS space (``nni.nas.hub.pytorch.DARTS(width=16, num_cells=8)``) made a
  super-net by NNI's DARTS strategy, and the same two steps written out (zero_grad, forward,
  backward, Adam; zero_grad, forward, backward, clip, SGD) with torch's default optimizers.

Operator calls, counted with ``torch.profiler`` over one step after a warm-up step: every
``aten::`` event whose name is not in :data:`NOT_WORK`, and that no counted event encloses
(``aten::conv2d`` counts once, not again for the ``aten::convolution`` inside it; the kernels of
an excluded call, such as the ``aten::_to_copy`` inside an ``aten::to``, count in its place).
Backward calls count (the engine runs them outside any ``aten::`` event). :data:`NOT_WORK` holds
views, metadata queries and bare allocations: ``view``, ``_unsafe_view``, ``reshape``,
``_reshape_alias``, ``as_strided``, ``as_strided_``, ``expand``, ``expand_as``, ``permute``,
``transpose``, ``t``, ``unsqueeze``, ``unsqueeze_``, ``squeeze``, ``squeeze_``, ``select``,
``slice``, ``narrow``, ``unbind``, ``split``, ``split_with_sizes``, ``chunk``, ``flatten``,
``unflatten``, ``movedim``, ``swapaxes``, ``view_as``, ``alias``, ``detach``, ``detach_``,
``lift_fresh``, ``contiguous``, ``to``, ``size``, ``stride``, ``numel``, ``dim``, ``is_nonzero``,
``is_same_size``, ``item``, ``_local_scalar_dense``, ``result_type``, ``_nnpack_available``,
``_has_compatible_shallow_copy_type``, ``empty``, ``empty_like``, ``empty_strided``, ``resize_``.

Measured (2 shared cores, batch 32, one run): nasctl 15,370 calls, 4.16 GiB, 13.4 s; base
32,771, 4.89 GiB, 15.4 s; NNI 3.0 30,871, 4.82 GiB, 15.6 s: calls 0.498x NNI's, memory 0.86x.

Peak memory: ``ru_maxrss`` of the process after the warm-up and the timed steps (before the
profiled one). Step time: the fastest of ``--steps`` timed steps (noise only adds time). Ratios
are to NNI when it ran, else to the base. Usage: ``python bench/oneshot_step.py [--batch 32]
[--steps 1] [--base REV | --no-base] [--nni-python PATH]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The last revision before the one-shot step was reworked (issue 22, part 2).
DEFAULT_BASE = "9b51e57"

NOT_WORK = frozenset(
    [
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "as_strided",
        "as_strided_",
        "expand",
        "expand_as",
        "permute",
        "transpose",
        "t",
        "unsqueeze",
        "unsqueeze_",
        "squeeze",
        "squeeze_",
        "select",
        "slice",
        "narrow",
        "unbind",
        "split",
        "split_with_sizes",
        "chunk",
        "flatten",
        "unflatten",
        "movedim",
        "swapaxes",
        "view_as",
        "alias",
        "detach",
        "detach_",
        "lift_fresh",
        "contiguous",
        "to",
        "size",
        "stride",
        "numel",
        "dim",
        "is_nonzero",
        "is_same_size",
        "item",
        "_local_scalar_dense",
        "result_type",
        "_nnpack_available",
        "_has_compatible_shallow_copy_type",
        "empty",
        "empty_like",
        "empty_strided",
        "resize_",
    ]
)


def _counts(name: str) -> bool:
    return name.startswith("aten::") and name[6:] not in NOT_WORK


def work_calls(events: Any) -> collections.Counter[str]:
    """Operator calls that do work, by name (see the module docstring)."""
    calls: collections.Counter[str] = collections.Counter()
    for event in events:
        if not _counts(event.name):
            continue
        parent = event.cpu_parent
        while parent is not None and not _counts(parent.name):
            parent = parent.cpu_parent
        if parent is None:
            calls[event.name] += 1
    return calls


def measure(step: Callable[[], None], steps: int) -> dict[str, Any]:
    """Warm up, time ``steps`` steps, read the peak RSS, then count one profiled step."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    calls = work_calls(prof.events())
    del torch
    return {"calls": sum(calls.values()), "top": calls.most_common(8), "rss": rss, "step_s": min(times)}


def _batches(batch: int) -> list[Any]:
    import torch

    torch.manual_seed(0)
    return [(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))) for _ in range(2)]


def child_nasctl(tree: Path, batch: int, steps: int) -> dict[str, Any]:
    sys.path.insert(0, str(tree))
    import torch

    from trials.nas.oneshot import DartsTrainer
    from trials.nas.zoo import DartsNetwork

    torch.set_num_threads(1)
    train, valid = _batches(batch)
    torch.manual_seed(0)
    trainer = DartsTrainer(
        DartsNetwork(3, 16, 10, n_layers=8),
        train_data=[train],
        valid_data=[valid],
        num_epochs=1,
        progress=False,
    )
    return measure(lambda: trainer.train_epoch(0), steps)


def child_nni(batch: int, steps: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from nni.nas.hub.pytorch import DARTS as DartsSpace
    from nni.nas.strategy import DARTS as DartsStrategy

    torch.set_num_threads(1)
    (x_train, y_train), (x_valid, y_valid) = _batches(batch)
    torch.manual_seed(0)
    net = DartsStrategy().mutate_model(DartsSpace(width=16, num_cells=8, dataset="cifar"))
    alphas = {id(p): p for m in net.modules() if hasattr(m, "arch_parameters") for p in m.arch_parameters()}
    weights = [p for p in net.parameters() if id(p) not in alphas]
    arch_optimizer = torch.optim.Adam(list(alphas.values()), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    optimizer = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)

    def step() -> None:
        arch_optimizer.zero_grad()
        F.cross_entropy(net(x_valid), y_valid).backward()
        arch_optimizer.step()
        optimizer.zero_grad()
        F.cross_entropy(net(x_train), y_train).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        optimizer.step()

    return measure(step, steps)


def run_child(python: str, side: str, tree: Path, batch: int, steps: int) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--child", side, "--tree", str(tree)]
    command += ["--batch", str(batch), "--steps", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_revision(revision: str, folder: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "trials"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per side (the fastest counts)")
    parser.add_argument("--base", default=DEFAULT_BASE, help="git revision to compare against")
    parser.add_argument("--no-base", action="store_true", help="skip the base revision")
    parser.add_argument("--nni-python", type=Path, default=None, help="a Python with nni 3.0 installed")
    parser.add_argument("--child", choices=("nasctl", "nni"), help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1:
        parser.error("--batch and --steps must be at least 1")
    if args.child == "nasctl":
        print(json.dumps(child_nasctl(args.tree, args.batch, args.steps)))
        return 0
    if args.child == "nni":
        print(json.dumps(child_nni(args.batch, args.steps)))
        return 0
    if args.nni_python is not None and not args.nni_python.exists():
        parser.error(f"--nni-python: {args.nni_python} does not exist")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["nasctl"] = run_child(sys.executable, "nasctl", REPO, args.batch, args.steps)
        if not args.no_base:
            base = export_revision(args.base, Path(scratch))
            results[f"base {args.base}"] = run_child(sys.executable, "nasctl", base, args.batch, args.steps)
        if args.nni_python is not None:
            results["NNI 3.0"] = run_child(str(args.nni_python), "nni", REPO, args.batch, args.steps)
    reference = "NNI 3.0" if "NNI 3.0" in results else next((k for k in results if k != "nasctl"), "nasctl")
    ref = results[reference]
    print(f"DARTS search step, batch {args.batch}, CPU, 1 thread; ratios to {reference}")
    print(f"{'':16} {'work calls':>10} {'ratio':>6} {'peak RSS':>10} {'ratio':>6} {'step':>8} {'ratio':>6}")
    for name, r in results.items():
        print(
            f"{name:16} {r['calls']:>10} {r['calls'] / ref['calls']:>6.3f} {r['rss'] / 2**30:>8.2f}Gi "
            f"{r['rss'] / ref['rss']:>6.2f} {r['step_s']:>7.2f}s {r['step_s'] / ref['step_s']:>6.2f}"
        )
    for name, r in results.items():
        print(f"{name}: most calls: " + ", ".join(f"{op[6:]} {n}" for op, n in r["top"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
