"""Reading one value of a config: its type checks, and the one-line messages that name its field.

Every message says where (``<source>: <field>:``), what was wrong and what is allowed, because the
person reading it has to fix the file. The v2 parser and the NNI v1 translation share these.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manager.config.schema import MAX_COUNT, ConfigError
from trials.durations import parse_duration
from trials.messages import did_you_mean
from trials.numbers import is_whole

_MAX_SHOWN = 60


@dataclass
class Entry:
    """A value found in the config and the field path the user wrote it under (for messages)."""

    label: str
    value: Any


class ValueReader:
    """Checks values against one source; remembers its name for messages and whether to touch the disk."""

    def __init__(self, source: str, base_dir: Path, check_files: bool) -> None:
        self.source = source
        self.base_dir = Path(os.path.abspath(base_dir))
        self.check_files = check_files

    def fail(self, label: str | None, problem: str) -> ConfigError:
        where = f"{self.source}: {label}: " if label else f"{self.source}: "
        return ConfigError(where + problem, field=label)

    def mapping(self, value: Any, label: str | None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            what = "the top level" if label is None else None
            problem = f"must be a mapping of keys to values, got {describe(value)}"
            raise self.fail(label, f"{what} {problem}" if what else problem)
        return value

    def check_keys(
        self, mapping: Mapping[Any, Any], allowed: tuple[str, ...], shown: tuple[str, ...], label: str | None
    ) -> None:
        """Refuse an unknown key, suggesting the closest accepted one or listing the canonical ones."""
        for key in mapping:
            if not isinstance(key, str) or key not in allowed:
                hint = did_you_mean(str(key), allowed)
                tail = hint if hint else f"; allowed keys: {', '.join(shown)}"
                raise self.fail(label, f"unknown key {quote(key)}{tail}")

    def string(self, entry: Entry, allow_empty: bool = True) -> str:
        if not isinstance(entry.value, str) or (not allow_empty and not entry.value.strip()):
            expected = "a string" if allow_empty else "a non-empty string"
            raise self.fail(entry.label, f"must be {expected}, got {describe(entry.value)}")
        return entry.value

    def boolean(self, entry: Entry) -> bool:
        if not isinstance(entry.value, bool):
            raise self.fail(entry.label, f"must be true or false, got {describe(entry.value)}")
        return entry.value

    def whole(self, entry: Entry, minimum: int) -> int:
        value = entry.value
        if not (is_whole(value) and value >= minimum):
            raise self.fail(entry.label, f"must be a whole number >= {minimum}, got {describe(value)}")
        if value > MAX_COUNT:
            raise self.fail(entry.label, f"must be at most {MAX_COUNT}, got {describe(value)}")
        return int(value)

    def duration(self, entry: Entry) -> float:
        try:
            return parse_duration(entry.value)
        except ValueError:
            raise self.fail(
                entry.label,
                "must be a number of seconds > 0 or a string like '30s', '10m', '2h', '1d', "
                f"got {describe(entry.value)}",
            ) from None

    def path(self, entry: Entry, kind: str) -> Path:
        """An absolute path; with ``check_files``, it must exist as a ``file`` or a ``folder``."""
        text = self.string(entry, allow_empty=False)
        try:
            path = Path(os.path.abspath(self.base_dir / Path(text).expanduser()))
        except (RuntimeError, ValueError, OSError) as exc:
            raise self.fail(entry.label, f"invalid path {describe(text)} ({exc})") from None
        if self.check_files:
            try:
                exists = path.is_file() if kind == "file" else path.is_dir()
                present = path.exists()
            except (OSError, ValueError) as exc:
                raise self.fail(entry.label, f"cannot use path {describe(text)} ({exc})") from None
            if not exists:
                problem = "does not exist" if not present else f"is not a {kind}"
                raise self.fail(entry.label, f"{kind} {path} {problem}")
        return path

    def json_like(self, value: Any, label: str) -> Any:
        """A deep copy of ``value`` if it is plain JSON data (what can be stored and sent over REST)."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(label, f"must be a finite number, got {value!r}")
            return value
        if isinstance(value, (list, tuple)):
            return [self.json_like(item, f"{label}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise self.fail(label, f"keys must be strings, got {describe(key)}")
                out[key] = self.json_like(item, f"{label}.{key}")
            return out
        raise self.fail(
            label,
            f"must hold only numbers, strings, booleans, null, lists and mappings, got {describe(value)}",
        )


def kind(value: Any) -> str:
    """``a string``, ``a list``, ``null``: what a value is, in words."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


def describe(value: Any) -> str:
    """``-2``, ``'abc' (a string)``, ``a list``: short, on one line, saying the type when it is the problem."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."
    if isinstance(value, str):
        text = repr(value)
        if len(text) > _MAX_SHOWN:
            text = text[:_MAX_SHOWN] + "...'"
        return f"{text} (a string)"
    return kind(value)


def quote(key: Any) -> str:
    text = repr(str(key))
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...'"
