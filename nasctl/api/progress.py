"""Where :meth:`nasctl.Experiment.wait` shows its progress: a terminal, a notebook, or nowhere.

A terminal gets the live frame of ``nasctl create --foreground`` (``nasctl.output.ProgressDisplay``,
on stderr). A Jupyter notebook gets one output that is updated in place (an IPython display
handle) holding an HTML progress bar and the same text line, so a notebook saved with its outputs
still reads well as plain text. Anything else (a script piped to a file, a CI job) stays quiet: a
library must not fill someone's logs uninvited.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: How many of the best trials the live views list under the bar.
TOP = 5


class Progress(Protocol):
    """What ``wait`` calls: a new state of the experiment, a line to keep, the end."""

    top: int

    def update(self, experiment: Mapping[str, Any], best: Sequence[Mapping[str, Any]]) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


def in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel), where a display can be updated in place."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def interactive() -> bool:
    """A person is watching: a notebook, or stderr is a terminal."""
    return in_notebook() or (sys.stderr is not None and sys.stderr.isatty())


def choose_progress(enabled: bool) -> Progress | None:
    """The display for this process: a notebook's, a terminal's, or None for silence."""
    if not enabled:
        return None
    if in_notebook():
        return NotebookProgress()
    if sys.stderr is not None and sys.stderr.isatty():
        from nasctl.output import ProgressDisplay

        return ProgressDisplay(sys.stderr, tty=True, top=TOP)
    return None


class NotebookProgress:
    """One notebook output, updated in place: a ``<progress>`` bar, the progress line, the best trials."""

    def __init__(self, top: int = TOP) -> None:
        self.top = top
        self._handle: Any = None
        self._messages: list[str] = []

    def update(self, experiment: Mapping[str, Any], best: Sequence[Mapping[str, Any]]) -> None:
        from nasctl.output import done_count, progress_line, trial_table

        line = progress_line(experiment)
        table = trial_table(best[: self.top], with_status=False) if best else ""
        text = "\n".join([*self._messages, line, *([table] if table else [])])
        total = experiment.get("maxTrialNumber") or 0
        bar = (
            f'<progress value="{done_count(experiment)}" max="{total}" style="width: 20em"></progress> '
            if total
            else ""
        )
        messages = "".join(f"<div>{html.escape(m)}</div>" for m in self._messages)
        rich = f"{messages}<div>{bar}<code>{html.escape(line)}</code></div>" + (
            f"<pre>{html.escape(table)}</pre>" if table else ""
        )
        self._show({"text/plain": text, "text/html": rich})

    def message(self, text: str) -> None:
        """A line kept above the bar (e.g. a failed trial and why)."""
        self._messages.append(text)

    def close(self) -> None:
        """The last state stays in the notebook; nothing to erase."""

    def _show(self, bundle: dict[str, str]) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
