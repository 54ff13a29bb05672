"""What the CLI shows a person: aligned tables, short durations, and the live progress display.

Everything here turns REST objects (docs/rest.md, camelCase dicts) into text and imports nothing
heavy, so ``nasctl --help`` stays fast. Scripts should use ``--json`` instead of parsing this.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from trials.status import TERMINAL_TRIAL_STATUSES, TrialStatus

BAR_WIDTH = 24
#: ``trial ls``'s REASON column when stdout is not a terminal (a pipe, a log, CI): long enough for
#: "exit code 1: ModuleNotFoundError: No module named 'sklearn'"; ``--json`` has the whole text.
PIPED_REASON_WIDTH = 60
#: The narrowest REASON column a terminal's width may cut it to.
MIN_REASON_WIDTH = 20
#: A failure reason on the ``nasctl status`` page (``nasctl log stderr TRIAL`` shows the whole error).
STATUS_REASON_WIDTH = 80


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    rows = [list(map(str, row)) for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def format_duration(seconds: float | None) -> str:
    """``4.1s``, ``3m12s``, ``30m``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"


def format_metric(value: Any) -> str:
    """A metric as a person reads it: 4 decimals for floats, the ``default`` of a dict, ``-`` if none."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return format_metric(value.get("default"))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def format_time(ms: int | None) -> str:
    """Local wall-clock time of a REST timestamp (milliseconds since the epoch)."""
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def format_decision(value: Any) -> str:
    """One architecture decision: the candidate name, ``[a, b]`` for inputs, the value of a hyper-parameter."""
    if isinstance(value, Mapping) and ("_value" in value or "_idx" in value):
        value = _named(value.get("_value", value.get("_idx")), value.get("_idx"))
    if isinstance(value, list):
        return "[" + ", ".join(format_decision(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _named(value: Any, index: Any) -> Any:
    """Nameless candidates (NNI's ss_gen writes ``""`` for inputs without a key) show as ``#index``."""
    if value == "" and isinstance(index, int):
        return f"#{index}"
    if isinstance(value, list) and isinstance(index, list) and len(index) == len(value):
        return [_named(v, i) for v, i in zip(value, index, strict=True)]
    return value


def choice_keys(trials: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every parameter key of these trials, in the order they first appear."""
    keys: dict[str, None] = {}
    for trial in trials:
        for key in trial.get("parameters") or {}:
            keys.setdefault(key, None)
    return list(keys)


def cut(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` characters, ``...`` marking a cut."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def terminal_width(stream: TextIO | None = None) -> int | None:
    """The terminal's columns when ``stream`` (stdout) is one; None for a pipe or a file."""
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        tty = False
    return shutil.get_terminal_size((100, 24)).columns if tty else None


def trial_table(
    trials: Sequence[Mapping[str, Any]],
    metric_label: str = "METRIC",
    with_status: bool = True,
    reasons: bool = False,
    width: int | None = None,
) -> str:
    """``TRIAL STATUS <METRIC> <one column per choice key> DURATION [REASON]``.

    With ``reasons``, a REASON column (why a trial failed, was stopped or what a success notes) when
    any trial has one, each cut to fit ``width`` columns (a terminal's), else to
    :data:`PIPED_REASON_WIDTH` characters.
    """
    keys = choice_keys(trials)
    headers = ["TRIAL", *(["STATUS"] if with_status else []), metric_label.upper(), *keys, "DURATION"]
    rows = []
    for trial in trials:
        params = trial.get("parameters") or {}
        row = [str(trial.get("id", "?"))]
        if with_status:
            row.append(trial_status_text(trial))
        row.append(format_metric(trial.get("finalMetric")))
        row.extend(format_decision(params[key]) if key in params else "-" for key in keys)
        row.append(format_duration(trial.get("duration")))
        rows.append(row)
    if not (reasons and any(trial.get("reason") for trial in trials)):
        return format_table(headers, rows)
    before = _table_width(headers, rows)
    room = PIPED_REASON_WIDTH if width is None else max(MIN_REASON_WIDTH, width - before - 2)
    for row, trial in zip(rows, trials, strict=True):
        row.append(cut(str(trial.get("reason") or "-"), room))
    return format_table([*headers, "REASON"], rows)


def _table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width of :func:`format_table`'s columns with their padding (its widest line)."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    return sum(widths) + 2 * (len(widths) - 1)


def pareto_table(pareto: Mapping[str, Any]) -> str:
    """The front: ``TRIAL <one column per objective> <one per choice key> DURATION``, listed along
    the front: the best of the first objective first (so the others go from their worst to best)."""
    objectives = pareto.get("objectives") or []
    metrics = [str(o["metric"]) for o in objectives]
    front = sorted(pareto.get("front") or [], key=lambda trial: _along(trial, objectives))
    keys = choice_keys(front)
    headers = ["TRIAL", *(m.upper() for m in metrics), *keys, "DURATION"]
    counts = {m for m in metrics if all(_is_count((t.get("values") or {}).get(m)) for t in front)}
    rows = []
    for trial in front:
        params = trial.get("parameters") or {}
        values = trial.get("values") or {}
        row = [str(trial.get("id", "?"))]
        row.extend(f"{values[m]:.0f}" if m in counts else format_metric(values.get(m)) for m in metrics)
        row.extend(format_decision(params[key]) if key in params else "-" for key in keys)
        row.append(format_duration(trial.get("duration")))
        rows.append(row)
    return format_table(headers, rows)


def _along(trial: Mapping[str, Any], objectives: Sequence[Mapping[str, Any]]) -> tuple[float, ...]:
    """Sort key: each objective's value, best first (a missing one last)."""
    values = trial.get("values") or {}
    key = []
    for objective in objectives:
        value = values.get(objective["metric"])
        if not isinstance(value, (int, float)) or math.isnan(value):
            key.append(float("inf"))
        else:
            key.append(-float(value) if objective.get("mode") == "maximize" else float(value))
    return tuple(key)


def _is_count(value: Any) -> bool:
    """A whole number (parameters, FLOPs), shown without decimals; 0 and 1 may be accuracies."""
    return isinstance(value, (int, float)) and math.isfinite(value) and value == int(value) and abs(value) > 1


def trial_status_text(trial: Mapping[str, Any]) -> str:
    """The status, with the step an early-stopped trial was stopped at: ``EARLY_STOPPED@3``."""
    status = str(trial.get("status", "?"))
    step = trial.get("stopStep")
    return f"{status}@{step}" if status == TrialStatus.EARLY_STOPPED.value and step is not None else status


def done_count(experiment: Mapping[str, Any]) -> int:
    counts = experiment.get("trialCounts") or {}
    return sum(int(counts.get(status.value, 0)) for status in TERMINAL_TRIAL_STATUSES)


def experiment_table(experiments: Sequence[Mapping[str, Any]]) -> str:
    """``ID NAME STATUS TRIALS BEST CREATED``, one row per experiment."""
    rows = [
        [
            str(exp.get("id")),
            str(exp.get("name") or "-"),
            str(exp.get("status")),
            f"{done_count(exp)}/{exp.get('maxTrialNumber', '?')}",
            format_metric(exp.get("bestMetric")),
            format_time(exp.get("createdAt")),
        ]
        for exp in experiments
    ]
    return format_table(["ID", "NAME", "STATUS", "TRIALS", "BEST", "CREATED"], rows)


def elapsed(experiment: Mapping[str, Any]) -> float | None:
    """Seconds the experiment has run (until its end, or until now)."""
    start = experiment.get("startTime")
    if not start:
        return None
    end = experiment.get("endTime") or time.time() * 1000
    return max(0.0, (end - start) / 1000)


def status_text(
    experiment: Mapping[str, Any], dashboard_url: str | None, waiting_reason: str | None = None
) -> str:
    """The ``nasctl status`` page: name, status, progress, best, counts, why a trial waits, error, link."""
    counts = experiment.get("trialCounts") or {}
    limit = experiment.get("maxExperimentDuration")
    rows = [
        ("experiment", f"{experiment.get('id')}  {experiment.get('name') or ''}".rstrip()),
        ("status", str(experiment.get("status"))),
        (
            "progress",
            f"{done_count(experiment)}/{experiment.get('maxTrialNumber', '?')} trials done "
            f"({counts.get('SUCCEEDED', 0)} succeeded, {counts.get('FAILED', 0)} failed"
            + (f", {stopped} early-stopped)" if (stopped := counts.get("EARLY_STOPPED", 0)) else ")"),
        ),
        ("running", f"{counts.get('RUNNING', 0)} running, {counts.get('WAITING', 0)} waiting"),
        (
            "best",
            f"{format_metric(experiment.get('bestMetric'))} (trial {experiment['bestTrialId']}, "
            f"{experiment.get('optimizeMode', 'maximize')})"
            if experiment.get("bestTrialId")
            else "-",
        ),
        (
            "duration",
            format_duration(elapsed(experiment)) + (f" (limit {format_duration(limit)})" if limit else ""),
        ),
    ]
    if waiting_reason:
        rows.append(("waiting", waiting_reason))
    rows.extend(failure_rows(experiment))
    error = experiment.get("error")
    if error:
        rows.append(("error", last_line(str(error))))
    if dashboard_url:
        rows.append(("dashboard", dashboard_url))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def failure_rows(experiment: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Why trials failed, the commonest reason first, each with its count; then where to read more.

    ``failed  exit code 1: this example needs scikit-learn installed (8)``, a line per reason
    (at most 3, the rest counted), and ``nasctl log stderr TRIAL`` for one failed trial.
    """
    reasons = experiment.get("failureReasons") or []
    lines = [
        f"{cut(str(item.get('reason') or 'no reason recorded'), STATUS_REASON_WIDTH)} ({item.get('count', 0)})"
        for item in reasons
    ]
    if others := experiment.get("otherFailures"):
        lines.append(f"{others} more for other reasons (nasctl trial ls --status FAILED)")
    if reasons and reasons[0].get("trialId"):
        lines.append(f"see: nasctl log stderr {reasons[0]['trialId']}")
    return [("failed" if i == 0 else "", line) for i, line in enumerate(lines)]


def last_line(text: str) -> str:
    """The last non-empty line: for a traceback, the exception itself."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def progress_line(experiment: Mapping[str, Any]) -> str:
    """``[#####-----]  7/20 trials  2 running  0 failed  best 0.9644 (Xa81c)  1m02s``."""
    total = experiment.get("maxTrialNumber") or 0
    done = done_count(experiment)
    counts = experiment.get("trialCounts") or {}
    filled = min(BAR_WIDTH, round(BAR_WIDTH * done / total)) if total else 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    best = (
        f"best {format_metric(experiment.get('bestMetric'))} ({experiment['bestTrialId']})"
        if experiment.get("bestTrialId")
        else "best -"
    )
    return (
        f"[{bar}] {done}/{total} trials  {counts.get('RUNNING', 0)} running  "
        f"{counts.get('FAILED', 0)} failed  {best}  {format_duration(elapsed(experiment))}  "
        f"{experiment.get('status')}"
    )


class ProgressDisplay:
    """The live view of ``nasctl create --foreground``.

    On a terminal it redraws one frame (progress bar and the best trials) in place; otherwise,
    e.g. in a log file or CI, it writes a plain progress line only when something changed.
    """

    def __init__(self, stream: TextIO, tty: bool | None = None, top: int = 5) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.top = top
        self._drawn_lines = 0
        self._last_key: tuple[Any, ...] | None = None

    def update(self, experiment: Mapping[str, Any], best: Sequence[Mapping[str, Any]]) -> None:
        if self.tty:
            self._redraw(experiment, best)
            return
        counts = experiment.get("trialCounts") or {}
        key = (
            done_count(experiment),
            counts.get(TrialStatus.RUNNING.value),
            experiment.get("bestTrialId"),
            experiment.get("status"),
        )
        if key != self._last_key:
            self._last_key = key
            self.stream.write(progress_line(experiment) + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays above the live frame."""
        self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Leave the last frame on screen; later output starts below it."""
        self._drawn_lines = 0

    def _frame(self, experiment: Mapping[str, Any], best: Sequence[Mapping[str, Any]]) -> list[str]:
        lines = [progress_line(experiment)]
        if best:
            lines.append(f"best {min(self.top, len(best))} trials:")
            lines.extend(
                "  " + line for line in trial_table(best[: self.top], with_status=False).splitlines()
            )
        return lines

    def _redraw(self, experiment: Mapping[str, Any], best: Sequence[Mapping[str, Any]]) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        lines = [line[:width] for line in self._frame(experiment, best)]
        self._erase()
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn_lines = len(lines)

    def _erase(self) -> None:
        if self.tty and self._drawn_lines:
            # Cursor to the start of the frame's first line, then clear to the end of the screen.
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")
            self._drawn_lines = 0
