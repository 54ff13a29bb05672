"""An NNI v1.9 classic-NAS trial and its v1 PPO config run under nasctl with three lines changed.

``tests/nni_port/classic_digits.py`` is written as NNI's classic-NAS example wrote its trial
(``import nni``, NNI's mutables with list candidates, ``InputChoice(n_candidates=2, n_chosen=1)``
without ``choose_from``, explicit keys, ``get_and_apply_next_architecture``, argparse), and
``config_ppo.yml`` in NNI's v1 keys with ``builtinTunerName: PPOTuner``. The tests port them by
the README's tables only (``tests/nni_porting.py``) and drive them with the real CLI and daemon.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from daemons import shut_down
from nni_porting import IMPORT, ROOT, line_table, module_table, port
from test_cli import client_of, nasctl, wait_finished

from manager.config import ConfigError, parse_config
from manager.loop.ss_gen import generate_search_space
from trials.nas import apply_fixed_architecture

SCRIPTS = ROOT / "tests" / "nni_port"
TRIAL = "classic_digits.py"
SPACE_FILE = "nni_auto_gen_search_space.json"
#: What NNI's ss_gen writes for this model, except the inputs without a key: NNI names both "".
SPACE = {
    "first_conv": {"_type": "layer_choice", "_value": ["conv5x5", "conv3x3"]},
    "mid_conv": {"_type": "layer_choice", "_value": ["0", "1"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}

pytestmark = pytest.mark.slow


def copy_ported(folder: Path, modules: dict[str, str], lines: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRIAL).write_text(port((SCRIPTS / TRIAL).read_text(), modules, lines))
    shutil.copy(SCRIPTS / "config_ppo.yml", folder / "config_ppo.yml")
    return folder


@pytest.fixture(scope="module")
def ported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_ported(tmp_path_factory.mktemp("classic") / "trial", module_table(), line_table())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("nasctl") / "home"
    yield path
    shut_down(path)


def test_the_readme_lists_the_three_lines_of_a_classic_nas_port() -> None:
    assert line_table() == {
        "import nni": "import trials as nni",
        "from nni.nas.pytorch.mutables import LayerChoice, InputChoice": "from trials.nas import LayerChoice, InputChoice",
        "from nni.nas.pytorch.classic_nas import get_and_apply_next_architecture": "from trials.nas import get_and_apply_next_architecture",
    }


def test_the_port_changes_exactly_the_three_import_lines(ported: Path) -> None:
    before = (SCRIPTS / TRIAL).read_text().splitlines()
    after = (ported / TRIAL).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert dict(changed) == line_table()


def test_ss_gen_writes_nni_keys_and_candidates_with_named_inputs(ported: Path, home: Path) -> None:
    proc = nasctl(home, "ss_gen", "-t", f"{sys.executable} {TRIAL}", "-f", SPACE_FILE, cwd=ported)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((ported / SPACE_FILE).read_text()) == SPACE


def test_the_module_table_ports_the_classic_imports_to_the_same_space(tmp_path: Path) -> None:
    # trials.nas.nni.mutables / .classic_nas (the one-shot table's rows) serve classic NAS too
    only_import_nni = {"import nni": line_table()["import nni"]}
    folder = copy_ported(tmp_path, module_table(), only_import_nni)
    text = (folder / TRIAL).read_text()
    assert "from trials.nas.nni.mutables import" in text and "from trials.nas.nni.classic_nas import" in text
    assert generate_search_space(f"{sys.executable} {TRIAL}", trial_dir=folder).to_json() == SPACE


def test_an_unmapped_nni_import_fails_the_port() -> None:
    with pytest.raises(AssertionError, match="no row for 'import nni.trial'"):
        port("import nni.trial\n", module_table(), line_table())
    assert IMPORT.match("from nni.nas.pytorch.mutables import LayerChoice")


def test_the_v1_ppo_config_runs_every_trial_to_a_final_result(ported: Path, home: Path) -> None:
    if not (ported / SPACE_FILE).exists():  # run alone: make what the ss_gen test makes
        generate_search_space(f"{sys.executable} {TRIAL}", trial_dir=ported, output=ported / SPACE_FILE)
    proc = nasctl(home, "create", "--config", "config_ppo.yml", "--json", cwd=ported)
    assert proc.returncode == 0, proc.stderr
    exp = wait_finished(home, json.loads(proc.stdout)["id"], timeout=180)
    assert exp["status"] == "DONE" and exp["tuner"] == "PPOTuner"
    with client_of(home) as client:
        trials = list(client.iter_trials(exp["id"]))
    assert len(trials) == 6  # maxTrialNum
    assert {t["status"] for t in trials} == {"SUCCEEDED"}, [t["reason"] for t in trials]
    assert all(isinstance(t["finalMetric"], float) for t in trials)
    for trial in trials:
        p = trial["parameters"]
        assert SPACE["first_conv"]["_value"][p["first_conv"]["_idx"]] == p["first_conv"]["_value"]
        assert SPACE["mid_conv"]["_value"][p["mid_conv"]["_idx"]] == p["mid_conv"]["_value"]
        assert p["skip"]["_value"] == [f"in{i}" for i in p["skip"]["_idx"]]
    # PPO proposes no architecture twice, so 6 of the 8 take each skip input at least twice
    assert len({json.dumps(t["parameters"], sort_keys=True) for t in trials}) == 6
    assert {t["parameters"]["skip"]["_idx"][0] for t in trials} == {0, 1}


def test_a_trial_applies_nnis_empty_input_names_by_index(ported: Path) -> None:
    """A space kept from ``nnictl ss_gen`` names both inputs "": the tuner's ``_idx`` decides."""
    spec = importlib.util.spec_from_file_location("ported_classic_digits", ported / TRIAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net(hidden_size=8)
    arch = apply_fixed_architecture(
        net,
        {
            "first_conv": {"_value": "conv3x3", "_idx": 1},
            "mid_conv": {"_value": "0", "_idx": 0},
            "skip": {"_value": [""], "_idx": [1]},
        },
    )
    assert arch["skip"] == {"_value": ["in1"], "_idx": [1]}
    assert net.skipconnect.active == [1]


@pytest.mark.parametrize("platform", ["remote", "pai", "kubeflow", "aml"])
def test_nni_cluster_platforms_are_refused_naming_the_cluster(tmp_path: Path, platform: str) -> None:
    config = {"trialCommand": "python3 x.py", "trainingServicePlatform": platform}
    with pytest.raises(ConfigError) as refused:
        parse_config(config, tmp_path, source="config_ppo.yml")
    assert str(refused.value).startswith("config_ppo.yml: trainingServicePlatform: ")
    assert f"({platform}) is not supported; nasctl runs trials on local or ray" in str(refused.value)
