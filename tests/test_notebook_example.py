"""``examples/notebook/digits_search.ipynb`` executed as a user would: a real kernel, daemon and trials.

The notebook and the digits example are copied to a temp folder (the notebook writes
``best_architecture.json`` beside itself) and run with nbclient in a temp ``NASCTL_HOME``; the
daemon it starts is stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemons import shut_down

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "notebook" / "digits_search.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, float]]:
    """The notebook after a run (cells with their outputs), and how long the run took."""
    work = tmp_path_factory.mktemp("notebook") / "examples"
    shutil.copytree(REPO / "examples" / "notebook", work / "notebook")
    shutil.copytree(REPO / "examples" / "digits", work / "digits")
    home = work.parent / "home"
    saved = dict(os.environ)
    os.environ["NASCTL_HOME"] = str(home)  # the kernel inherits this process's environment
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    notebook = nbformat.read(work / "notebook" / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(work / "notebook")}},
    )
    started = time.monotonic()
    try:
        client.execute()
        yield notebook, time.monotonic() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shut_down(home)


def text_of(cell: Any) -> str:
    """Everything a code cell showed as text: streams, results, displays (their last update)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def cell_with(notebook: Any, source: str) -> Any:
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and source in cell.source)


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_the_notebook_runs_in_well_under_a_minute(executed: tuple[Any, float]) -> None:
    _, took = executed
    print(f"notebook ran in {took:.1f} s")
    assert took < 120


def test_wait_shows_a_progress_display_that_ends_done(executed: tuple[Any, float]) -> None:
    notebook, _ = executed
    cell = cell_with(notebook, "exp.wait()")
    displays = [o for o in cell.outputs if o.get("output_type") == "display_data"]
    assert displays and "text/html" in displays[-1]["data"]
    assert "4/4 trials" in text_of(cell) and "ExperimentStatus.DONE" in text_of(cell)


def test_the_dataframe_has_choice_and_metric_columns(executed: tuple[Any, float]) -> None:
    notebook, _ = executed
    text = text_of(cell_with(notebook, "trials_dataframe()"))
    for column in ("'value'", "'choice.conv1'", "'choice.skip'", "'metric.params'", "'metric.flops'"):
        assert column in text


def test_the_best_trial_is_printed_with_its_architecture_file(executed: tuple[Any, float]) -> None:
    notebook, _ = executed
    text = text_of(cell_with(notebook, "exp.best()"))
    assert "best trial " in text and ": accuracy 0." in text
    assert "retrain it: python ../digits/retrain.py --arch best_architecture.json" in text
