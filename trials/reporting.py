"""The trial side of the metric channel, and the trial's view of its parameters.

Inside an experiment every result is one JSON line appended to ``$NASCTL_TRIAL_DIR/metrics.jsonl``
with a single ``write`` (so a reader never sees half a record from a live writer) and flushed
at once. The daemon tails that file and remembers, per trial, the byte offset it has stored,
in the same transaction as the metrics; so a daemon restarted after a crash neither loses nor
repeats a record, and the file is the trial's own record when no daemon runs at all.

A record::

    {"type": "PERIODICAL", "sequence": 3, "value": 0.91, "time": 1732770000.123}
    {"type": "FINAL", "sequence": 0, "value": {"default": 0.93, "loss": 0.2}, "time": ...}

NaN and infinities are written as JSON's common extension tokens ``NaN``/``Infinity``, which
Python's ``json`` reads back. Nothing here imports torch or numpy.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from trials import env
from trials.metrics import FINAL, PERIODICAL


def coerce_metric(value: Any, what: str = "metric") -> float | dict[str, Any]:
    """A JSON-able number or dict from Python, numpy or torch scalars; TypeError for anything else."""
    if isinstance(value, dict):
        if "default" not in value:
            raise TypeError(f"{what}: a dict metric needs a numeric 'default' key, got keys {sorted(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what}: dict keys must be strings, got {type(key).__name__}")
            out[key] = (
                item
                if isinstance(item, str) and key != "default"
                else coerce_metric(item, f"{what}[{key!r}]")
            )
        return out
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a number, got bool")
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else value
    scalar = _foreign_scalar(value)
    if scalar is not None:
        return scalar
    raise TypeError(
        f"{what}: expected a number, a numpy/torch scalar or a dict with a numeric 'default', "
        f"got {type(value).__module__}.{type(value).__qualname__}"
    )


def _foreign_scalar(value: Any) -> float | int | None:
    """numpy scalars and 0-d (or one-element) arrays/tensors, recognised without importing them."""
    module = type(value).__module__.split(".")[0]
    if module not in ("numpy", "torch") or not hasattr(value, "item"):
        return None
    size = getattr(value, "size", 1)
    size = size() if callable(size) and module == "torch" else size
    numel = value.numel() if module == "torch" else size
    if numel != 1:
        return None
    item = value.item()
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return None
    return item


class _Channel:
    """Where this process's results go: the trial's metrics file, or stderr when standalone."""

    def __init__(self) -> None:
        self.sequence = 0
        self._fd: int | None = None
        self._fd_path: Path | None = None

    def _path(self) -> Path | None:
        trial_dir = os.environ.get(env.TRIAL_DIR)
        return Path(trial_dir) / env.METRICS_FILE_NAME if trial_dir else None

    def send(self, kind: str, value: Any) -> None:
        sequence = self.sequence if kind == PERIODICAL else 0
        record = {"type": kind, "sequence": sequence, "value": value, "time": time.time()}
        path = self._path()
        if path is None:
            label = "intermediate result" if kind == PERIODICAL else "final result"
            print(f"[nasctl] {label}: {_show(value)}", file=sys.stderr, flush=True)
        else:
            if self._fd_path != path:  # first record, or the environment moved us (tests do)
                if self._fd is not None:
                    os.close(self._fd)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._fd_path = path
            line = (json.dumps(record, allow_nan=True) + "\n").encode()
            os.write(self._fd, line)
            if kind == FINAL:
                os.fsync(self._fd)
        if kind == PERIODICAL:
            self.sequence += 1


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


_channel = _Channel()
_parameters: dict[str, dict[str, Any]] = {}  # source (file or "") -> parameters, read once


def report_intermediate_result(metric: Any) -> None:
    """Record one intermediate result (e.g. per epoch); a number, a scalar, or a dict with 'default'."""
    _channel.send(PERIODICAL, coerce_metric(metric, "report_intermediate_result"))


def report_final_result(metric: Any) -> None:
    """Record the trial's final result, the one tuners learn from."""
    _channel.send(FINAL, coerce_metric(metric, "report_final_result"))


def load_parameter_file(path: str | Path) -> dict[str, Any]:
    """Read a packed parameter file ``{"parameter_id", "parameter_source", "parameters", ...}``."""
    try:
        packed = json.loads(Path(path).read_text())
    except OSError as exc:
        raise RuntimeError(
            f"{env.PARAMETER_FILE}={path}: cannot read parameter file ({exc.strerror})"
        ) from None
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{env.PARAMETER_FILE}={path}: not valid JSON ({exc.msg})") from None
    if not isinstance(packed, dict) or not isinstance(packed.get("parameters"), dict):
        raise RuntimeError(f"{env.PARAMETER_FILE}={path}: expected an object with a 'parameters' object")
    return packed


def get_next_parameter() -> dict[str, Any]:
    """This trial's parameters (architecture and hyper-parameters), read once from its parameter file.

    Standalone (no experiment), returns the architecture file named by ``NASCTL_ARCHITECTURE``
    if set, else an empty dict, and says so on stderr.
    """
    path = os.environ.get(env.PARAMETER_FILE) or ""
    arch_path = os.environ.get(env.ARCHITECTURE) or ""
    source = path or arch_path
    if source not in _parameters:
        if path:
            _parameters[source] = load_parameter_file(path)["parameters"]
        elif arch_path:
            try:
                loaded = json.loads(Path(arch_path).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise RuntimeError(
                    f"{env.ARCHITECTURE}={arch_path}: cannot read architecture ({exc})"
                ) from None
            if not isinstance(loaded, dict):
                raise RuntimeError(f"{env.ARCHITECTURE}={arch_path}: expected a JSON object")
            _parameters[source] = loaded
            print(f"[nasctl] standalone: parameters from {arch_path}", file=sys.stderr)
        else:
            _parameters[source] = {}
            print("[nasctl] standalone: no experiment, so no parameters", file=sys.stderr)
    return dict(_parameters[source])


def get_experiment_id() -> str:
    return os.environ.get(env.EXPERIMENT_ID, "STANDALONE")


def get_trial_id() -> str:
    return os.environ.get(env.TRIAL_ID, "STANDALONE")


def get_sequence_id() -> int:
    return int(os.environ.get(env.SEQUENCE_ID, "0"))
