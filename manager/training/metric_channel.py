"""The metric channel as bytes: complete JSON-line records after a byte offset.

A trial's records (the format :mod:`trials.reporting` writes) arrive as an append-only stream of
lines: a file in the trial's folder for local trials, a buffer for simulated ones. A reader
takes the complete lines after the offset it has stored, so a live writer's half-written last
line is read next time, not twice; once the trial has ended (``final``) that last line counts.
"""

from __future__ import annotations

from pathlib import Path

from manager.training.base import MetricsChunk
from trials.metrics import MetricReport, parse_metric_line

#: A read takes at most this many bytes; the caller reads again for the rest.
READ_CHUNK_BYTES = 1 << 20


def read_metrics_file(path: Path, offset: int, final: bool = False) -> MetricsChunk:
    """Complete records of ``path`` after byte ``offset`` (see :meth:`TrainingService.read_metrics`)."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read(READ_CHUNK_BYTES + 1)
    except FileNotFoundError:
        return MetricsChunk((), (), offset)
    return parse_metrics(data, offset, final)


def parse_metrics(data: bytes, offset: int, final: bool = False) -> MetricsChunk:
    """The records in ``data``, the bytes of the channel from ``offset`` (at most one byte more
    than :data:`READ_CHUNK_BYTES`: that extra byte says more follows)."""
    more = len(data) > READ_CHUNK_BYTES
    data = data[:READ_CHUNK_BYTES]
    end = data.rfind(b"\n") + 1
    if final and not more:
        end = len(data)
    if end == 0:
        if more:  # one line longer than the cap: skip it rather than stall forever
            cut = len(data)
            return MetricsChunk(
                (), (f"metrics.jsonl byte {offset}: record longer than {cut} bytes",), offset + cut, True
            )
        return MetricsChunk((), (), offset)
    reports: list[MetricReport] = []
    invalid: list[str] = []
    position = offset
    for line in data[:end].splitlines(keepends=True):
        text = line.strip()
        if text:
            try:
                reports.append(parse_metric_line(text))
            except ValueError as exc:
                invalid.append(f"metrics.jsonl byte {position}: {exc}")
        position += len(line)
    return MetricsChunk(tuple(reports), tuple(invalid), offset + end, more)
