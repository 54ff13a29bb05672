"""The experiment config: what is accepted, how it is normalized, and what each mistake says."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager.config import (
    ConfigError,
    ExperimentConfig,
    TrainingServiceConfig,
    TunerConfig,
    load_config,
    parse_config,
)
from manager.training import registry as training_registry

SPACE = {
    "conv1": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in0", "in1"], "n_chosen": 1}},
}
CUSTOM_TUNER_DIR = Path(__file__).parent / "data" / "custom_tuner"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: a search-space file, a model file and a trial script."""
    (tmp_path / "ss.json").write_text(json.dumps(SPACE))
    (tmp_path / "model.py").write_text("# model\n")
    (tmp_path / "train.py").write_text("print('trial')\n")
    (tmp_path / "code").mkdir()
    return tmp_path


def parse(obj: dict[str, Any], base: Path) -> ExperimentConfig:
    return parse_config(obj, base, source="exp.yaml")


def error_of(obj: Any, base: Path) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(obj, base, source="exp.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


# -- accepted configs --------------------------------------------------------------------------


def test_minimal_config_gets_defaults(project: Path) -> None:
    config = parse({"trialCommand": "python train.py"}, project)
    assert config.trial_command == "python train.py"
    assert config.trial_code_directory == project
    assert config.trial_concurrency == 1
    assert config.trial_gpu_number == 0
    assert config.max_trial_number is None
    assert config.max_experiment_duration is None
    assert config.search_space_file is None and config.search_space is None
    assert config.tuner == TunerConfig(name="Random", class_args={})
    assert config.training_service == TrainingServiceConfig()
    assert config.optimize_mode == "maximize"


def test_full_v2_config_is_read(project: Path) -> None:
    config = parse(
        {
            "experimentName": "digits",
            "searchSpaceFile": "ss.json",
            "trialCommand": "python train.py",
            "trialCodeDirectory": "code",
            "trialConcurrency": 4,
            "trialGpuNumber": 1,
            "maxTrialNumber": 20,
            "maxExperimentDuration": "1h",
            "maxTrialDuration": "10m",
            "tuner": {"name": "Random", "classArgs": {"optimize_mode": "minimize", "seed": 3}},
            "trainingService": {
                "platform": "local",
                "useActiveGpu": True,
                "maxTrialNumberPerGpu": 2,
                "gpuIndices": [0, 2],
            },
        },
        project,
    )
    assert config.experiment_name == "digits"
    assert config.search_space_file == project / "ss.json"
    assert config.trial_code_directory == project / "code"
    assert (config.trial_concurrency, config.trial_gpu_number, config.max_trial_number) == (4, 1, 20)
    assert (config.max_experiment_duration, config.max_trial_duration) == (3600.0, 600.0)
    assert config.tuner == TunerConfig(name="Random", class_args={"optimize_mode": "minimize", "seed": 3})
    assert config.optimize_mode == "minimize"
    assert config.training_service == TrainingServiceConfig("local", True, 2, (0, 2))


def test_relative_paths_resolve_against_base_dir_not_cwd(
    project: Path, tmp_path_factory, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = parse({"trialCommand": "x", "searchSpaceFile": "./code/../ss.json"}, project)
    assert config.search_space_file == project / "ss.json"


def test_inline_search_space_is_kept_normalized(project: Path) -> None:
    space = {
        "conv1": {"_type": "layer_choice", "_value": ["a", "b"]},
        "lr": {"_type": "uniform", "_value": [0, 1]},
    }
    config = parse({"trialCommand": "x", "searchSpace": space}, project)
    assert config.search_space == space
    assert config.search_space_file is None


def test_model_file_is_kept_as_absolute_path(project: Path) -> None:
    config = parse({"trialCommand": "x", "modelFile": "model.py"}, project)
    assert config.model_file == project / "model.py"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        (90, 90.0),
        (0.5, 0.5),
    ],
)
def test_durations_accept_seconds_and_nni_strings(project: Path, text: Any, seconds: float) -> None:
    config = parse({"trialCommand": "x", "maxExperimentDuration": text, "maxTrialDuration": text}, project)
    assert config.max_experiment_duration == seconds
    assert config.max_trial_duration == seconds


@pytest.mark.parametrize(
    "value", [[0, 1], 1, "0,1", "0, 1"], ids=["list", "one-number", "v1-string", "v1-string-spaces"]
)
def test_gpu_indices_accept_list_number_and_v1_string(project: Path, value: Any) -> None:
    config = parse({"trialCommand": "x", "trainingService": {"gpuIndices": value}}, project)
    expected = (1,) if value == 1 else (0, 1)
    assert config.training_service.gpu_indices == expected


def test_a_platform_a_plugin_registers_is_accepted(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training_registry, "_registered", {})
    training_registry.register("cluster", lambda config, settings: None)  # type: ignore[arg-type,return-value]
    config = parse({"trialCommand": "x", "trainingService": {"platform": "cluster"}}, project)
    assert config.training_service.platform == "cluster"


def test_custom_tuner_by_module_and_class(project: Path) -> None:
    config = parse(
        {
            "trialCommand": "x",
            "tuner": {
                "codeDirectory": str(CUSTOM_TUNER_DIR),
                "className": "my_tuner.FirstCandidateTuner",
                "classArgs": {"limit": 3},
            },
        },
        project,
    )
    assert config.tuner == TunerConfig(
        name=None,
        class_args={"limit": 3},
        code_directory=CUSTOM_TUNER_DIR,
        class_name="my_tuner.FirstCandidateTuner",
        class_file_name=None,
    )


def test_experiment_name_must_be_a_string(project: Path) -> None:
    message = error_of({"trialCommand": "x", "experimentName": 12}, project)
    assert message == "exp.yaml: experimentName: must be a string, got 12"


def test_null_optional_values_mean_defaults(project: Path) -> None:
    config = parse(
        {"trialCommand": "x", "maxTrialNumber": None, "trialConcurrency": None, "tuner": None}, project
    )
    assert (config.max_trial_number, config.trial_concurrency, config.tuner.name) == (None, 1, "Random")


# -- NNI v1 keys -------------------------------------------------------------------------------


def test_v1_config_translates_to_the_same_config_as_v2(project: Path) -> None:
    v1 = {
        "authorName": "me",
        "experimentName": "digits",
        "trialConcurrency": 2,
        "maxExecDuration": "2h",
        "maxTrialNum": 10,
        "trainingServicePlatform": "local",
        "searchSpacePath": "ss.json",
        "useAnnotation": False,
        "logDir": "/tmp/nni",
        "logLevel": "info",
        "debug": False,
        "multiPhase": False,
        "tuner": {"builtinTunerName": "Random", "classArgs": {"optimize_mode": "maximize"}},
        "trial": {"command": "python train.py", "codeDir": "code", "gpuNum": 1, "nasMode": "classic_mode"},
        "localConfig": {"gpuIndices": "0,1", "maxTrialNumPerGpu": 2, "useActiveGpu": True},
    }
    v2 = {
        "experimentName": "digits",
        "trialConcurrency": 2,
        "maxExperimentDuration": 7200,
        "maxTrialNumber": 10,
        "searchSpaceFile": "ss.json",
        "tuner": {"name": "Random", "classArgs": {"optimize_mode": "maximize"}},
        "trialCommand": "python train.py",
        "trialCodeDirectory": "code",
        "trialGpuNumber": 1,
        "trainingService": {
            "platform": "local",
            "gpuIndices": [0, 1],
            "maxTrialNumberPerGpu": 2,
            "useActiveGpu": True,
        },
    }
    assert parse(v1, project) == parse(v2, project)


def test_v1_custom_tuner_with_class_file_name(project: Path) -> None:
    config = parse(
        {
            "trialCommand": "x",
            "tuner": {
                "codeDir": str(CUSTOM_TUNER_DIR),
                "classFileName": "my_tuner.py",
                "className": "NniStyleTuner",
            },
        },
        project,
    )
    assert config.tuner.code_directory == CUSTOM_TUNER_DIR
    assert (config.tuner.class_file_name, config.tuner.class_name) == ("my_tuner.py", "NniStyleTuner")


def test_v1_and_v2_spellings_of_one_field_conflict(project: Path) -> None:
    message = error_of({"trialCommand": "x", "maxTrialNum": 3, "maxTrialNumber": 4}, project)
    assert message == "exp.yaml: maxTrialNumber: duplicates maxTrialNum; give only one of them"


def test_v1_trial_command_conflicts_with_trial_command(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trial": {"command": "y"}}, project)
    assert message == "exp.yaml: trial.command: duplicates trialCommand; give only one of them"


def test_use_annotation_true_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "useAnnotation": True}, project)
    assert message == "exp.yaml: useAnnotation: must be false; nasctl does not support it"


def test_multi_phase_true_is_refused(project: Path) -> None:
    assert "multiPhase: must be false" in error_of({"trialCommand": "x", "multiPhase": True}, project)


def test_v1_nas_mode_other_than_classic_is_refused(project: Path) -> None:
    message = error_of({"trial": {"command": "x", "nasMode": "enas_mode"}}, project)
    assert message == "exp.yaml: trial.nasMode: only classic_mode is supported, got 'enas_mode' (a string)"


def test_unsupported_key_says_why(project: Path) -> None:
    message = error_of({"trialCommand": "x", "advisor": {"builtinAdvisorName": "BOHB"}}, project)
    assert message == "exp.yaml: advisor: advisors are not supported; use tuner"


def test_ignored_key_still_has_its_value_checked(project: Path) -> None:
    message = error_of({"trialCommand": "x", "logLevel": "loud"}, project)
    assert message.startswith("exp.yaml: logLevel: must be one of trace, debug, info")


# -- errors: one line, the field, what was wrong, what is allowed ------------------------------


def test_trial_concurrency_below_one_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialConcurrency": -2}, project)
    assert message == "exp.yaml: trialConcurrency: must be a whole number >= 1, got -2"


def test_unknown_key_suggests_the_closest(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialConcurency": 2}, project)
    assert message == "exp.yaml: unknown key 'trialConcurency' (did you mean 'trialConcurrency'?)"


def test_unknown_key_without_close_match_lists_allowed_keys(project: Path) -> None:
    message = error_of({"trialCommand": "x", "zzz": 1}, project)
    assert message.startswith("exp.yaml: unknown key 'zzz'; allowed keys: experimentName, searchSpaceFile")


def test_unknown_nested_key_names_its_section(project: Path) -> None:
    message = error_of({"trialCommand": "x", "tuner": {"name": "Random", "clasArgs": {}}}, project)
    assert message == "exp.yaml: tuner: unknown key 'clasArgs' (did you mean 'classArgs'?)"


def test_unknown_training_service_key_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trainingService": {"useActiveGPU": True}}, project)
    assert message == "exp.yaml: trainingService: unknown key 'useActiveGPU' (did you mean 'useActiveGpu'?)"


def test_wrong_type_names_the_expected_type(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialConcurrency": "two"}, project)
    assert message == "exp.yaml: trialConcurrency: must be a whole number >= 1, got 'two' (a string)"


def test_boolean_is_not_a_number(project: Path) -> None:
    message = error_of({"trialCommand": "x", "maxTrialNumber": True}, project)
    assert message == "exp.yaml: maxTrialNumber: must be a whole number >= 1, got true"


def test_fractional_count_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "maxTrialNumber": 2.5}, project)
    assert message == "exp.yaml: maxTrialNumber: must be a whole number >= 1, got 2.5"


def test_negative_gpu_number_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialGpuNumber": -1}, project)
    assert message == "exp.yaml: trialGpuNumber: must be a whole number >= 0, got -1"


def test_missing_trial_command_is_refused(project: Path) -> None:
    message = error_of({"trialConcurrency": 1}, project)
    assert message == "exp.yaml: trialCommand: missing; give the command that runs one trial"


@pytest.mark.parametrize("value", ["", "   ", ["python", "train.py"]])
def test_trial_command_must_be_a_non_empty_string(project: Path, value: Any) -> None:
    assert error_of({"trialCommand": value}, project).startswith(
        "exp.yaml: trialCommand: must be a non-empty string"
    )


@pytest.mark.parametrize("value", ["10x", "10", 0, -5, "0s", True, math.nan, math.inf, [1]])
def test_bad_durations_are_refused(project: Path, value: Any) -> None:
    message = error_of({"trialCommand": "x", "maxTrialDuration": value}, project)
    assert message.startswith(
        "exp.yaml: maxTrialDuration: must be a number of seconds > 0 or a string like '30s'"
    )


def test_top_level_must_be_a_mapping(project: Path) -> None:
    message = error_of(["trialCommand"], project)
    assert message == "exp.yaml: the top level must be a mapping of keys to values, got a list"


def test_missing_search_space_file_names_the_path(project: Path) -> None:
    message = error_of({"trialCommand": "x", "searchSpaceFile": "nope.json"}, project)
    assert message == f"exp.yaml: searchSpaceFile: file {project / 'nope.json'} does not exist"


def test_search_space_file_that_is_a_folder_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "searchSpaceFile": "code"}, project)
    assert message == f"exp.yaml: searchSpaceFile: file {project / 'code'} is not a file"


def test_invalid_search_space_file_content_is_refused_at_create(project: Path) -> None:
    (project / "bad.json").write_text('{"conv1": {"_type": "layer_chioce", "_value": ["a"]}}')
    message = error_of({"trialCommand": "x", "searchSpaceFile": "bad.json"}, project)
    assert message.startswith("exp.yaml: searchSpaceFile: ")
    assert "unknown _type 'layer_chioce' (did you mean 'layer_choice'?)" in message


def test_invalid_inline_search_space_names_the_key(project: Path) -> None:
    space = {"skip": {"_type": "input_choice", "_value": {"candidates": ["a"], "n_chosen": 3}}}
    message = error_of({"trialCommand": "x", "searchSpace": space}, project)
    assert message.startswith(
        "exp.yaml: searchSpace: 'skip': n_chosen must be null or a whole number from 0 to 1"
    )


def test_absurd_number_in_inline_search_space_names_the_field(project: Path) -> None:
    space = {"lr": {"_type": "uniform", "_value": [0, 10**400]}}
    message = error_of({"trialCommand": "x", "searchSpace": space}, project)
    assert message.startswith("exp.yaml: searchSpace: 'lr': _value of uniform must be 2 finite numbers")


def test_search_space_file_and_inline_space_together_are_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "searchSpaceFile": "ss.json", "searchSpace": SPACE}, project)
    assert message == "exp.yaml: searchSpace: give either searchSpaceFile or searchSpace, not both"


def test_model_file_with_search_space_file_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "searchSpaceFile": "ss.json", "modelFile": "model.py"}, project)
    assert message.startswith("exp.yaml: modelFile: give either modelFile")


def test_missing_trial_code_directory_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialCodeDirectory": "src"}, project)
    assert message == f"exp.yaml: trialCodeDirectory: folder {project / 'src'} does not exist"


def test_unknown_platform_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trainingServicePlatform": "slurm"}, project)
    assert message == "exp.yaml: trainingServicePlatform: must be local or ray, got 'slurm' (a string)"


def test_misspelt_platform_is_refused_with_a_suggestion(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trainingService": {"platform": "locl"}}, project)
    assert message == (
        "exp.yaml: trainingService.platform: must be local or ray, got 'locl' (a string) (did you mean 'local'?)"
    )


def test_address_is_only_for_ray(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trainingService": {"address": "auto"}}, project)
    assert message == "exp.yaml: trainingService.address: only for platform ray, but platform is local"


@pytest.mark.parametrize("value", [[0, 0], [-1], [], "a,b", [0.5]])
def test_bad_gpu_indices_are_refused(project: Path, value: Any) -> None:
    message = error_of({"trialCommand": "x", "trainingService": {"gpuIndices": value}}, project)
    assert message.startswith("exp.yaml: trainingService.gpuIndices: ")


def test_use_active_gpu_must_be_boolean(project: Path) -> None:
    message = error_of({"trialCommand": "x", "localConfig": {"useActiveGpu": "yes please"}}, project)
    assert message == "exp.yaml: localConfig.useActiveGpu: must be true or false, got 'yes please' (a string)"


# -- tuner section -------------------------------------------------------------------------------


def test_unknown_tuner_name_suggests_the_closest(project: Path) -> None:
    message = error_of({"trialCommand": "x", "tuner": {"name": "Randm"}}, project)
    assert message.startswith(
        "exp.yaml: tuner.name: unknown tuner 'Randm' (did you mean 'Random'?); built-in tuners:"
    )


def test_tuner_without_name_or_class_is_refused(project: Path) -> None:
    message = error_of({"trialCommand": "x", "tuner": {"classArgs": {}}}, project)
    assert message.startswith("exp.yaml: tuner.name: missing; give a built-in tuner name (Random")


def test_builtin_name_and_custom_class_together_are_refused(project: Path) -> None:
    tuner = {"builtinTunerName": "Random", "className": "my_tuner.FirstCandidateTuner"}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert message.startswith(
        "exp.yaml: tuner.className: give either tuner.builtinTunerName (a built-in tuner)"
    )


def test_class_name_needs_a_module_or_class_file(project: Path) -> None:
    tuner = {"codeDirectory": str(CUSTOM_TUNER_DIR), "className": "FirstCandidateTuner"}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert message.startswith("exp.yaml: tuner.className: must be 'module.ClassName'")


def test_class_file_name_needs_code_directory(project: Path) -> None:
    tuner = {"classFileName": "my_tuner.py", "className": "NniStyleTuner"}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert (
        message == "exp.yaml: tuner.classFileName: needs tuner.codeDirectory, the folder that holds the file"
    )


def test_missing_class_file_names_the_path(project: Path) -> None:
    tuner = {"codeDir": "code", "classFileName": "missing.py", "className": "T"}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert message == f"exp.yaml: tuner.classFileName: file {project / 'code' / 'missing.py'} does not exist"


def test_missing_tuner_code_directory_is_refused(project: Path) -> None:
    tuner = {"codeDirectory": "nowhere", "className": "my_tuner.T"}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert message == f"exp.yaml: tuner.codeDirectory: folder {project / 'nowhere'} does not exist"


def test_bad_optimize_mode_is_refused(project: Path) -> None:
    tuner = {"name": "Random", "classArgs": {"optimize_mode": "max"}}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert (
        message
        == "exp.yaml: tuner.classArgs.optimize_mode: must be maximize or minimize, got 'max' (a string)"
    )


def test_class_args_must_be_plain_data(project: Path) -> None:
    tuner = {"name": "Random", "classArgs": {"seed": {1, 2}}}
    message = error_of({"trialCommand": "x", "tuner": tuner}, project)
    assert message.startswith("exp.yaml: tuner.classArgs.seed: must hold only numbers, strings")


# -- round trip through the database form -------------------------------------------------------


def full_config(project: Path) -> ExperimentConfig:
    return parse(
        {
            "experimentName": "e",
            "searchSpaceFile": "ss.json",
            "modelFile": None,
            "trialCommand": "python train.py",
            "trialConcurrency": 3,
            "trialGpuNumber": 1,
            "maxTrialNumber": 7,
            "maxExperimentDuration": "1d",
            "maxTrialDuration": 12.5,
            "tuner": {
                "codeDir": str(CUSTOM_TUNER_DIR),
                "classFileName": "my_tuner.py",
                "className": "NniStyleTuner",
                "classArgs": {"budget": 3, "nested": {"a": [1, 2.5, None]}},
            },
            "trainingService": {"gpuIndices": [1], "maxTrialNumberPerGpu": 2},
        },
        project,
    )


def test_to_json_round_trips_through_from_json(project: Path) -> None:
    config = full_config(project)
    stored = json.loads(json.dumps(config.to_json()))
    assert ExperimentConfig.from_json(stored) == config


def test_to_json_is_camel_case_v2_with_string_paths(project: Path) -> None:
    data = full_config(project).to_json()
    assert data["searchSpaceFile"] == str(project / "ss.json")
    assert data["maxExperimentDuration"] == 86400.0
    assert data["tuner"]["classFileName"] == "my_tuner.py"
    assert data["trainingService"]["maxTrialNumberPerGpu"] == 2


def test_from_json_does_not_need_files_that_moved_since(project: Path) -> None:
    config = full_config(project)
    stored = config.to_json()
    (project / "ss.json").unlink()
    assert ExperimentConfig.from_json(stored) == config


def test_inline_search_space_round_trips(project: Path) -> None:
    config = parse({"trialCommand": "x", "searchSpace": SPACE}, project)
    assert ExperimentConfig.from_json(config.to_json()) == config


def test_from_json_refuses_what_is_not_a_stored_config() -> None:
    with pytest.raises(ConfigError, match=r"^stored config: not a stored experiment config \(KeyError"):
        ExperimentConfig.from_json({"trialCodeDirectory": "/tmp"})


# -- load_config: the YAML file --------------------------------------------------------------------


def test_load_config_resolves_paths_against_the_file_folder(project: Path, monkeypatch) -> None:
    (project / "exp.yaml").write_text("trialCommand: python train.py\nsearchSpaceFile: ss.json\n")
    monkeypatch.chdir("/")
    config = load_config(project / "exp.yaml")
    assert config.search_space_file == project / "ss.json"
    assert config.trial_code_directory == project


def test_load_config_names_the_file_as_given(project: Path, monkeypatch) -> None:
    (project / "exp.yaml").write_text("trialCommand: x\ntrialConcurrency: -2\n")
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as info:
        load_config("exp.yaml")
    assert str(info.value) == "exp.yaml: trialConcurrency: must be a whole number >= 1, got -2"


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file$"):
        load_config(tmp_path / "nope.yaml")


def test_load_config_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("trialCommand: x\ntuner:\n  name: [Random\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "exp.yaml")
    assert "exp.yaml: line 4, column 1: invalid YAML:" in str(info.value)


def test_load_config_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a YAML file$"):
        load_config(tmp_path)


def test_load_config_binary_file(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_bytes(b"trialCommand: x\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text$"):
        load_config(tmp_path / "exp.yaml")


def test_load_config_top_level_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("- trialCommand\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping of keys to values, got a list$"):
        load_config(tmp_path / "exp.yaml")


def test_load_config_empty_file(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="is empty; it needs at least trialCommand$"):
        load_config(tmp_path / "exp.yaml")


def test_load_config_refuses_a_key_given_twice(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("trialCommand: x\ntrialConcurrency: 1\ntrialConcurrency: 8\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "exp.yaml")
    assert "line 3, column 1: invalid YAML: key 'trialConcurrency' appears twice" in str(info.value)


def test_load_config_yaml_merge_key_may_be_overridden(tmp_path: Path) -> None:
    text = "trialCommand: x\ntrainingService:\n  <<: {platform: local, useActiveGpu: false}\n  useActiveGpu: true\n"
    (tmp_path / "exp.yaml").write_text(text)
    assert load_config(tmp_path / "exp.yaml").training_service.use_active_gpu is True


# -- property: any input gives a config or a ConfigError, never anything else --------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_KNOWN = [
    "experimentName",
    "searchSpaceFile",
    "searchSpace",
    "modelFile",
    "trialCommand",
    "trialCodeDirectory",
    "trialConcurrency",
    "trialGpuNumber",
    "maxTrialNumber",
    "maxExperimentDuration",
    "maxTrialDuration",
    "tuner",
    "trainingService",
    "maxTrialNum",
    "maxExecDuration",
    "searchSpacePath",
    "trial",
    "localConfig",
    "trainingServicePlatform",
    "useAnnotation",
    "multiPhase",
    "authorName",
    "logLevel",
    "assessor",
]
_SECTION_KEYS = [
    "name",
    "builtinTunerName",
    "className",
    "codeDirectory",
    "codeDir",
    "classFileName",
    "classArgs",
    "platform",
    "useActiveGpu",
    "maxTrialNumberPerGpu",
    "gpuIndices",
    "address",
    "command",
    "gpuNum",
    "maxTrialNumPerGpu",
    "optimize_mode",
    "nasMode",
]
_values = (
    _json
    | st.sampled_from(
        ["ss.json", "code", "model.py", "1h", "30s", "Random", "local", "ray", "0,1", "my_tuner.py"]
    )
    | st.dictionaries(st.sampled_from(_SECTION_KEYS), _json, max_size=4)
)


_plausible: dict[str, st.SearchStrategy[Any]] = {
    "experimentName": st.text(max_size=8),
    "searchSpaceFile": st.sampled_from(["ss.json", "model.py", "code", "nope.json"]),
    "searchSpace": st.just(SPACE),
    "modelFile": st.sampled_from(["model.py", "ss.json"]),
    "trialCodeDirectory": st.sampled_from(["code", ".", "ss.json"]),
    "trialConcurrency": st.integers(-2, 5) | st.floats(0, 4),
    "trialGpuNumber": st.integers(-1, 3),
    "maxTrialNumber": st.integers(-1, 50),
    "maxExperimentDuration": st.sampled_from(["30s", "2h", "1.5d", "0s", "5"]) | st.floats(-1, 1e6),
    "maxTrialDuration": st.integers(-5, 100) | st.sampled_from(["10m", "1x"]),
    "tuner": st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["Random", "RandomNAS", "Randm"]),
            "builtinTunerName": st.just("Random"),
            "classArgs": st.dictionaries(st.sampled_from(["optimize_mode", "seed"]), _values, max_size=2),
            "className": st.sampled_from(["my_tuner.FirstCandidateTuner", "NniStyleTuner", "1bad"]),
            "codeDirectory": st.sampled_from([str(CUSTOM_TUNER_DIR), "code"]),
            "classFileName": st.sampled_from(["my_tuner.py", "x.txt"]),
        },
    ),
    "trainingService": st.fixed_dictionaries(
        {},
        optional={
            "platform": st.sampled_from(["local", "ray", "remote"]),
            "useActiveGpu": st.booleans(),
            "maxTrialNumberPerGpu": st.integers(-1, 4),
            "gpuIndices": st.lists(st.integers(-1, 3), max_size=3) | st.sampled_from(["0,1", "1", "x"]),
            "address": st.just("auto"),
        },
    ),
}


def _mostly(good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four (``a | b`` would weigh every branch of a nested one_of alike)."""
    return st.integers(0, 3).flatmap(lambda i: junk if i == 0 else good)


_near_valid = st.fixed_dictionaries(
    {"trialCommand": _mostly(st.just("python train.py"), _scalars)},
    optional={key: _mostly(strategy, _values) for key, strategy in _plausible.items()},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(_KNOWN) | st.text(max_size=10), _values, max_size=6) | _json)
def test_any_input_gives_a_config_or_a_config_error(project: Path, obj: Any) -> None:
    try:
        config = parse_config(obj, project, source="exp.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert ExperimentConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_near_valid)
def test_any_near_valid_config_gives_a_config_or_a_config_error(project: Path, obj: dict[str, Any]) -> None:
    try:
        config = parse_config(obj, project, source="exp.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert ExperimentConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


# -- what importing the config loads ------------------------------------------------------------


def _modules_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_config_imports_no_tuner_implementation() -> None:
    loaded = _modules_after("import manager.config")
    tuner_modules = [m for m in loaded if m.startswith("manager.tuners.")]
    assert sorted(tuner_modules) == ["manager.tuners.base", "manager.tuners.registry"]
    assert "torch" not in loaded


def test_tuner_registry_does_not_import_config_so_they_form_no_cycle() -> None:
    assert not [m for m in _modules_after("import manager.tuners.registry") if m.startswith("manager.config")]


# -- the Ray platform --------------------------------------------------------------------------


def test_ray_platform_reads_its_keys(project: Path) -> None:
    config = parse(
        {
            "trialCommand": "x",
            "trialCpuNumber": 0.5,
            "trialGpuNumber": 1,
            "trainingService": {
                "platform": "ray",
                "address": "127.0.0.1:6379",
                "resources": {"node_a": 1, "accelerator_type:A100": 0.25},
                "placementStrategy": "SPREAD",
            },
        },
        project,
    )
    service = config.training_service
    assert (service.platform, service.address, service.placement_strategy) == (
        "ray",
        "127.0.0.1:6379",
        "SPREAD",
    )
    assert dict(service.resources) == {"node_a": 1.0, "accelerator_type:A100": 0.25}
    assert (config.trial_cpu_number, service.trial_cpu_number, service.trial_gpu_number) == (0.5, 0.5, 1)


def test_ray_defaults_are_one_cpu_packed(project: Path) -> None:
    config = parse({"trialCommand": "x", "trainingService": {"platform": "ray"}}, project)
    service = config.training_service
    assert (service.address, service.placement_strategy, dict(service.resources)) == (None, "PACK", {})
    assert (config.trial_cpu_number, service.trial_cpu_number) == (1.0, 1.0)


def test_v1_ray_platform_is_accepted_under_its_v1_key(project: Path) -> None:
    config = parse({"trialCommand": "x", "trainingServicePlatform": "ray"}, project)
    assert config.training_service.platform == "ray"


def test_a_ray_config_round_trips_through_json(project: Path) -> None:
    config = parse(
        {
            "trialCommand": "x",
            "trialCpuNumber": 2,
            "trainingService": {"platform": "ray", "address": "ray://head:10001", "resources": {"a": 2}},
        },
        project,
    )
    assert ExperimentConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("auto", True),
        ("10.0.0.1:6379", True),
        ("ray://head:10001", True),
        ("head", False),
        ("h:0", False),
        ("", False),
    ],
)
def test_ray_address_is_auto_host_port_or_ray_client(project: Path, address: str, ok: bool) -> None:
    obj = {"trialCommand": "x", "trainingService": {"platform": "ray", "address": address}}
    if ok:
        assert parse(obj, project).training_service.address == address
    else:
        assert error_of(obj, project).startswith("exp.yaml: trainingService.address: must be")


@pytest.mark.parametrize("value", [0, -1, "1", True, 0.00001, math.inf, 1.7e308])
def test_trial_cpu_number_must_be_a_positive_amount(project: Path, value: Any) -> None:
    message = error_of(
        {"trialCommand": "x", "trialCpuNumber": value, "trainingService": {"platform": "ray"}}, project
    )
    assert message.startswith(
        "exp.yaml: trialCpuNumber: must be a number > 0 (fractions in steps of 0.0001), got "
    )


def test_trial_cpu_number_is_refused_for_local(project: Path) -> None:
    message = error_of({"trialCommand": "x", "trialCpuNumber": 2}, project)
    assert message == (
        "exp.yaml: trialCpuNumber: only for platform ray (local trials are not limited in CPUs), "
        "but platform is local"
    )


@pytest.mark.parametrize("key", ["resources", "placementStrategy"])
def test_ray_keys_are_only_for_ray(project: Path, key: str) -> None:
    value = {"a": 1} if key == "resources" else "PACK"
    message = error_of({"trialCommand": "x", "trainingService": {key: value}}, project)
    assert message == f"exp.yaml: trainingService.{key}: only for platform ray, but platform is local"


def test_bad_placement_strategy_names_the_allowed_ones(project: Path) -> None:
    obj = {"trialCommand": "x", "trainingService": {"platform": "ray", "placementStrategy": "spread"}}
    assert error_of(obj, project) == (
        "exp.yaml: trainingService.placementStrategy: must be PACK or SPREAD, got 'spread' (a string)"
    )


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"a": 0}, "trainingService.resources.a: must be a number > 0"),
        ({"a": "x"}, "trainingService.resources.a: must be a number > 0"),
        ({"CPU": 2}, "trainingService.resources.CPU: give trialCpuNumber instead"),
        ({"GPU": 1}, "trainingService.resources.GPU: give trialGpuNumber instead"),
        ([1], "trainingService.resources: must be a mapping"),
    ],
)
def test_bad_ray_resources_name_the_resource(project: Path, resources: Any, expected: str) -> None:
    obj = {"trialCommand": "x", "trainingService": {"platform": "ray", "resources": resources}}
    assert error_of(obj, project).startswith(f"exp.yaml: {expected}")
