"""TensorFlow stays optional: ``import trials`` and the PyTorch paths never load it, and the Keras
API says in one line how to install it where it is missing. The Keras API never loads torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A finder that makes TensorFlow and Keras look uninstalled, in the child process only.
_HIDE_TENSORFLOW = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Hide())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=None
    )


def test_the_sdk_and_the_pytorch_api_never_import_tensorflow() -> None:
    code = (
        "import sys, trials, trials.nas, trials.nas.classic, trials.nas.oneshot\n"
        "from trials.nas import LayerChoice, get_and_apply_next_architecture\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not loaded, loaded\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_the_keras_api_without_tensorflow_says_how_to_install_it() -> None:
    result = _run(_HIDE_TENSORFLOW + "import trials.nas.tensorflow\n")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: trials.nas.tensorflow needs TensorFlow 2 with Keras: pip install 'nasctl[tensorflow]'"
    )


def test_the_keras_api_never_imports_torch() -> None:
    pytest.importorskip("tensorflow")
    code = (
        "import sys, trials.nas.tensorflow\n"
        "from trials.nas.tensorflow import LayerChoice, get_and_apply_next_architecture\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
