"""Argument types the benchmarks share: whole numbers and comma-separated lists."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def int_list(text: str) -> list[int]:
    return [positive(part) for part in text.split(",") if part]


def name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
