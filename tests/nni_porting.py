"""How an NNI v1.9 script is ported, read from the README's "Coming from NNI" tables.

Two tables: the classic-NAS lines (an NNI line -> the nasctl line, taken whole), and the module
table (an NNI module path -> a nasctl one, for ``from M import ...`` and ``import M as x``). An
``nni`` import line that neither table maps fails, so the README is the whole port.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MODULE_ROW = re.compile(r"^\| `(nni(?:\.\w+)*)` \| `(trials(?:\.\w+)*)` \|")
LINE_ROW = re.compile(r"^\| `((?:import|from) nni[^`]*)` \| `((?:import|from) trials[^`]*)` \|")
IMPORT = re.compile(r"^(\s*)(from|import) (nni(?:\.\w+)*)\b")


def _rows(pattern: re.Pattern[str]) -> dict[str, str]:
    rows = [pattern.match(line) for line in README.read_text().splitlines()]
    return {row.group(1): row.group(2) for row in rows if row}


def module_table() -> dict[str, str]:
    """NNI module path -> nasctl module path."""
    return _rows(MODULE_ROW)


def line_table() -> dict[str, str]:
    """A whole NNI import line (classic NAS) -> the line a user writes instead."""
    return _rows(LINE_ROW)


def port(text: str, modules: dict[str, str], lines: dict[str, str] | None = None) -> str:
    """``text`` with each ``nni`` import line changed by ``lines`` (whole line) or ``modules``."""
    lines = lines or {}

    def port_line(line: str) -> str:
        if line.strip() in lines:
            return line[: len(line) - len(line.lstrip())] + lines[line.strip()]
        return IMPORT.sub(replace, line)

    def replace(match: re.Match[str]) -> str:
        module = match.group(3)
        assert module in modules, f"the README's porting tables have no row for {match.string.strip()!r}"
        return f"{match.group(1)}{match.group(2)} {modules[module]}"

    return "\n".join(port_line(line) for line in text.splitlines()) + "\n"
