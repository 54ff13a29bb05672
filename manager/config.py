"""The experiment config: its schema, its validation, and NNI v1 -> v2 translation.

A config arrives as YAML (``nasctl create --config exp.yaml``) or as its JSON body over REST. It is
written in NNI v2's camelCase; NNI v1 keys (``maxTrialNum``, ``trial: {command, codeDir}``,
``tuner: {builtinTunerName}``, ...) are translated so that users' old files keep working.
Every error is one line that names the file, the field, what was wrong and what is allowed, because
the person reading it has to fix the file; an invalid config creates nothing.

The result is a frozen :class:`ExperimentConfig` whose :meth:`ExperimentConfig.to_json` is the
normalized v2 form the daemon stores and :meth:`ExperimentConfig.from_json` reloads.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trials.durations import parse_duration
from trials.errors import SearchSpaceError
from trials.messages import did_you_mean
from trials.metrics import OPTIMIZE_MODES
from trials.numbers import is_whole
from trials.searchspace import SearchSpace

PLATFORMS = ("local", "ray")
DEFAULT_TUNER = "Random"

_LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MAX_SHOWN = 60
#: Counts (concurrency, trial budget, GPUs) above this fit no database integer column.
MAX_COUNT = 2**31 - 1


class ConfigError(ValueError):
    """An experiment config is invalid: one line, ``<source>: <field>: <what was wrong>, <allowed>``."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message.replace("\r", " ").replace("\n", " "))
        self.field = field


@dataclass(frozen=True)
class TunerConfig:
    """Which tuner proposes architectures: a built-in by ``name`` or a user's class."""

    name: str | None
    class_args: Mapping[str, Any] = field(default_factory=dict)
    code_directory: Path | None = None
    class_name: str | None = None
    class_file_name: str | None = None

    @property
    def is_custom(self) -> bool:
        return self.name is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classArgs": copy.deepcopy(dict(self.class_args)),
            "codeDirectory": None if self.code_directory is None else str(self.code_directory),
            "className": self.class_name,
            "classFileName": self.class_file_name,
        }


@dataclass(frozen=True)
class TrainingServiceConfig:
    """Where trials run and how they share GPUs."""

    platform: str = "local"
    use_active_gpu: bool = False
    max_trial_number_per_gpu: int = 1
    gpu_indices: tuple[int, ...] | None = None
    address: str | None = None  # Ray cluster address (platform "ray" only)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "useActiveGpu": self.use_active_gpu,
            "maxTrialNumberPerGpu": self.max_trial_number_per_gpu,
            "gpuIndices": None if self.gpu_indices is None else list(self.gpu_indices),
            "address": self.address,
        }


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A validated experiment config; paths are absolute, durations in seconds."""

    experiment_name: str | None = None
    search_space_file: Path | None = None
    search_space: Mapping[str, Any] | None = None
    model_file: Path | None = None
    trial_command: str
    trial_code_directory: Path
    trial_concurrency: int = 1
    trial_gpu_number: int = 0
    max_trial_number: int | None = None
    max_experiment_duration: float | None = None
    max_trial_duration: float | None = None
    tuner: TunerConfig = field(default_factory=lambda: TunerConfig(name=DEFAULT_TUNER))
    training_service: TrainingServiceConfig = field(default_factory=TrainingServiceConfig)

    @property
    def optimize_mode(self) -> str:
        """``maximize`` or ``minimize``: the tuner's ``optimize_mode`` class argument, NNI's convention."""
        return str(self.tuner.class_args.get("optimize_mode", "maximize"))

    def to_json(self) -> dict[str, Any]:
        """The normalized camelCase v2 form; :meth:`from_json` turns it back into an equal config."""
        return {
            "experimentName": self.experiment_name,
            "searchSpaceFile": None if self.search_space_file is None else str(self.search_space_file),
            "searchSpace": None if self.search_space is None else copy.deepcopy(dict(self.search_space)),
            "modelFile": None if self.model_file is None else str(self.model_file),
            "trialCommand": self.trial_command,
            "trialCodeDirectory": str(self.trial_code_directory),
            "trialConcurrency": self.trial_concurrency,
            "trialGpuNumber": self.trial_gpu_number,
            "maxTrialNumber": self.max_trial_number,
            "maxExperimentDuration": self.max_experiment_duration,
            "maxTrialDuration": self.max_trial_duration,
            "tuner": self.tuner.to_json(),
            "trainingService": self.training_service.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "stored config") -> ExperimentConfig:
        """Reload a stored :meth:`to_json` form. Files are not checked again: they may have moved since."""
        return _Parser(source, Path("/"), check_files=False).parse(obj)


def parse_config(obj: Any, base_dir: Path, source: str = "config") -> ExperimentConfig:
    """Validate a config (the YAML as a dict); relative paths resolve against ``base_dir``.

    Raises :class:`ConfigError` for every kind of bad input, never another exception type.
    """
    return _Parser(source, base_dir, check_files=True).parse(obj)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML config file; its folder is the base of its relative paths."""
    source = str(path)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        obj = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{source}: {where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if obj is None:
        raise ConfigError(f"{source}: is empty; it needs at least trialCommand")
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values, got {_kind(obj)}")
    base_dir = Path(os.path.abspath(file)).parent
    return parse_config(obj, base_dir, source)


# -- YAML loading --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error, not a silent win."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    seen: list[Any] = []
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if any(key == other for other in seen):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
            )
        seen.append(key)
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


# -- the schema -----------------------------------------------------------------------------------

#: NNI v2 top-level keys (the canonical form).
_V2_KEYS = (
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
)
#: NNI v1 top-level keys renamed to their v2 spelling.
_V1_RENAMES = {
    "maxTrialNum": "maxTrialNumber",
    "maxExecDuration": "maxExperimentDuration",
    "searchSpacePath": "searchSpaceFile",
}
#: Harmless keys accepted and ignored (checked for type so a typo in a value still shows).
_IGNORED = {
    "authorName": "string",
    "description": "string",
    "logDir": "string",
    "logLevel": "level",
    "logCollection": "logCollection",
    "debug": "bool",
    "versionCheck": "bool",
    "multiThread": "bool",
    "nniManagerIp": "string",
    "tunerGpuIndices": "any",
}
#: Keys that mean something nasctl does not do; silently ignoring them would mislead.
_UNSUPPORTED = {
    "assessor": "assessors are not supported; remove the key",
    "advisor": "advisors are not supported; use tuner",
    "experimentWorkingDirectory": "not supported; nasctl keeps experiments under $NASCTL_HOME",
    "sharedStorage": "not supported; remove the key",
    "machineList": "remote machines are not supported; use trainingService platform local or ray",
    "remoteConfig": "remote machines are not supported; use trainingService platform local or ray",
    "paiConfig": "OpenPAI is not supported; use trainingService platform local or ray",
    "kubeflowConfig": "Kubeflow is not supported; use trainingService platform local or ray",
    "frameworkcontrollerConfig": "FrameworkController is not supported; use platform local or ray",
    "amlConfig": "AML is not supported; use trainingService platform local or ray",
    "dltsConfig": "DLTS is not supported; use trainingService platform local or ray",
}
_TOP_KEYS = (
    *_V2_KEYS,
    *_V1_RENAMES,
    "trial",
    "localConfig",
    "trainingServicePlatform",
    "useAnnotation",
    "multiPhase",
    *_IGNORED,
    *_UNSUPPORTED,
)
#: v1 ``trial:`` section -> v2 top-level keys.
_V1_TRIAL = {"command": "trialCommand", "codeDir": "trialCodeDirectory", "gpuNum": "trialGpuNumber"}
_V1_TRIAL_KEYS = (*_V1_TRIAL, "nasMode")
#: v1 ``localConfig:`` -> v2 ``trainingService`` keys.
_V1_LOCAL = {
    "gpuIndices": "gpuIndices",
    "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
    "useActiveGpu": "useActiveGpu",
}
_SERVICE_KEYS = ("platform", "useActiveGpu", "maxTrialNumberPerGpu", "gpuIndices", "address", "reuseMode")
#: Tuner keys: v2 spelling first; v1 spellings are renamed.
_TUNER_V2 = ("name", "className", "codeDirectory", "classFileName", "classArgs")
_TUNER_V1 = {"builtinTunerName": "name", "codeDir": "codeDirectory"}
_TUNER_IGNORED = ("gpuIndices", "includeIntermediateResults", "checkpointDir")
_TUNER_KEYS = (*_TUNER_V2, *_TUNER_V1, *_TUNER_IGNORED)


@dataclass
class _Entry:
    """A value found in the config and the field path the user wrote it under (for messages)."""

    label: str
    value: Any


class _Parser:
    """One validation pass; remembers the source name for messages and whether to touch the disk."""

    def __init__(self, source: str, base_dir: Path, check_files: bool) -> None:
        self.source = source
        self.base_dir = Path(os.path.abspath(base_dir))
        self.check_files = check_files

    # -- errors and basic types ---------------------------------------------------------------
    def fail(self, label: str | None, problem: str) -> ConfigError:
        where = f"{self.source}: {label}: " if label else f"{self.source}: "
        return ConfigError(where + problem, field=label)

    def mapping(self, value: Any, label: str | None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            what = "the top level" if label is None else None
            problem = f"must be a mapping of keys to values, got {_describe(value)}"
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
                raise self.fail(label, f"unknown key {_quote(key)}{tail}")

    def string(self, entry: _Entry, allow_empty: bool = True) -> str:
        if not isinstance(entry.value, str) or (not allow_empty and not entry.value.strip()):
            expected = "a string" if allow_empty else "a non-empty string"
            raise self.fail(entry.label, f"must be {expected}, got {_describe(entry.value)}")
        return entry.value

    def boolean(self, entry: _Entry) -> bool:
        if not isinstance(entry.value, bool):
            raise self.fail(entry.label, f"must be true or false, got {_describe(entry.value)}")
        return entry.value

    def whole(self, entry: _Entry, minimum: int) -> int:
        value = entry.value
        if not (is_whole(value) and value >= minimum):
            raise self.fail(entry.label, f"must be a whole number >= {minimum}, got {_describe(value)}")
        if value > MAX_COUNT:
            raise self.fail(entry.label, f"must be at most {MAX_COUNT}, got {_describe(value)}")
        return int(value)

    def duration(self, entry: _Entry) -> float:
        try:
            return parse_duration(entry.value)
        except ValueError:
            raise self.fail(
                entry.label,
                "must be a number of seconds > 0 or a string like '30s', '10m', '2h', '1d', "
                f"got {_describe(entry.value)}",
            ) from None

    def path(self, entry: _Entry, kind: str) -> Path:
        """An absolute path; with ``check_files``, it must exist as a ``file`` or a ``folder``."""
        text = self.string(entry, allow_empty=False)
        try:
            path = Path(os.path.abspath(self.base_dir / Path(text).expanduser()))
        except (RuntimeError, ValueError, OSError) as exc:
            raise self.fail(entry.label, f"invalid path {_describe(text)} ({exc})") from None
        if self.check_files:
            try:
                exists = path.is_file() if kind == "file" else path.is_dir()
                present = path.exists()
            except (OSError, ValueError) as exc:
                raise self.fail(entry.label, f"cannot use path {_describe(text)} ({exc})") from None
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
                    raise self.fail(label, f"keys must be strings, got {_describe(key)}")
                out[key] = self.json_like(item, f"{label}.{key}")
            return out
        raise self.fail(
            label,
            f"must hold only numbers, strings, booleans, null, lists and mappings, got {_describe(value)}",
        )

    # -- sections -----------------------------------------------------------------------------
    def parse(self, obj: Any) -> ExperimentConfig:
        try:
            return self.experiment(obj)
        except RecursionError:
            raise self.fail(None, "is nested too deeply to be a config") from None

    def experiment(self, obj: Any) -> ExperimentConfig:
        top = self.mapping(obj, None)
        self.check_keys(top, _TOP_KEYS, _V2_KEYS, None)
        fields: dict[str, _Entry] = {}
        service: dict[str, _Entry] = {}

        def put(target: dict[str, _Entry], key: str, label: str, value: Any) -> None:
            if value is None:
                return
            if key in target:
                raise self.fail(label, f"duplicates {target[key].label}; give only one of them")
            target[key] = _Entry(label, value)

        for key, value in top.items():
            if key in _V2_KEYS and key != "trainingService":
                put(fields, key, key, value)
            elif key in _V1_RENAMES:
                put(fields, _V1_RENAMES[key], key, value)
            elif key == "trial":
                if value is None:
                    continue
                trial = self.mapping(value, "trial")
                self.check_keys(trial, _V1_TRIAL_KEYS, _V1_TRIAL_KEYS, "trial")
                for sub, item in trial.items():
                    if sub == "nasMode":
                        if item not in (None, "classic_mode"):
                            raise self.fail(
                                "trial.nasMode", f"only classic_mode is supported, got {_describe(item)}"
                            )
                        continue
                    put(fields, _V1_TRIAL[sub], f"trial.{sub}", item)
            elif key == "trainingService":
                if value is None:
                    continue
                section = self.mapping(value, "trainingService")
                self.check_keys(section, _SERVICE_KEYS, _SERVICE_KEYS[:-1], "trainingService")
                for sub, item in section.items():
                    put(service, sub, f"trainingService.{sub}", item)
            elif key == "localConfig":
                if value is None:
                    continue
                local = self.mapping(value, "localConfig")
                self.check_keys(local, tuple(_V1_LOCAL), tuple(_V1_LOCAL), "localConfig")
                for sub, item in local.items():
                    put(service, _V1_LOCAL[sub], f"localConfig.{sub}", item)
            elif key == "trainingServicePlatform":
                put(service, "platform", key, value)
            elif key in ("useAnnotation", "multiPhase"):
                if value is not None and self.boolean(_Entry(key, value)):
                    raise self.fail(key, "must be false; nasctl does not support it")
            elif key in _IGNORED:
                self.ignored(key, value)
            else:
                raise self.fail(key, _UNSUPPORTED[key])
        return self.build(fields, service)

    def ignored(self, key: str, value: Any) -> None:
        kind = _IGNORED[key]
        if value is None or kind == "any":
            return
        entry = _Entry(key, value)
        if kind == "string":
            self.string(entry)
        elif kind == "bool":
            self.boolean(entry)
        elif kind == "level" and value not in _LOG_LEVELS:
            raise self.fail(key, f"must be one of {', '.join(_LOG_LEVELS)}, got {_describe(value)}")
        elif kind == "logCollection" and value not in ("http", "none"):
            raise self.fail(key, f"must be http or none, got {_describe(value)}")

    def build(self, fields: dict[str, _Entry], service: dict[str, _Entry]) -> ExperimentConfig:
        def get(key: str) -> _Entry | None:
            return fields.get(key)

        if "trialCommand" not in fields:
            raise self.fail("trialCommand", "missing; give the command that runs one trial")
        trial_command = self.string(fields["trialCommand"], allow_empty=False)
        name = get("experimentName")
        experiment_name = None if name is None else self.string(name)

        if "searchSpaceFile" in fields and "searchSpace" in fields:
            raise self.fail(
                fields["searchSpace"].label,
                f"give either {fields['searchSpaceFile'].label} or searchSpace, not both",
            )
        if "modelFile" in fields:
            for other in ("searchSpaceFile", "searchSpace"):
                if other in fields:
                    raise self.fail(
                        "modelFile",
                        f"give either modelFile (search space generated from the model) or "
                        f"{fields[other].label}, not both",
                    )
        search_space_file = None
        if (entry := get("searchSpaceFile")) is not None:
            search_space_file = self.path(entry, "file")
            if self.check_files:
                self.search_space_content(entry.label, search_space_file)
        search_space = None
        if (entry := get("searchSpace")) is not None:
            search_space = self.inline_search_space(entry)
        model_file = None if (entry := get("modelFile")) is None else self.path(entry, "file")

        code_dir_entry = get("trialCodeDirectory")
        trial_code_directory = (
            self.base_dir if code_dir_entry is None else self.path(code_dir_entry, "folder")
        )
        if code_dir_entry is None and self.check_files and not self.base_dir.is_dir():
            raise self.fail("trialCodeDirectory", f"folder {self.base_dir} does not exist")

        def optional(key: str, read: Any) -> Any:
            entry = get(key)
            return None if entry is None else read(entry)

        return ExperimentConfig(
            experiment_name=experiment_name,
            search_space_file=search_space_file,
            search_space=search_space,
            model_file=model_file,
            trial_command=trial_command,
            trial_code_directory=trial_code_directory,
            trial_concurrency=optional("trialConcurrency", lambda e: self.whole(e, 1)) or 1,
            trial_gpu_number=optional("trialGpuNumber", lambda e: self.whole(e, 0)) or 0,
            max_trial_number=optional("maxTrialNumber", lambda e: self.whole(e, 1)),
            max_experiment_duration=optional("maxExperimentDuration", self.duration),
            max_trial_duration=optional("maxTrialDuration", self.duration),
            tuner=self.tuner(get("tuner")),
            training_service=self.training_service(service),
        )

    def search_space_content(self, label: str, path: Path) -> None:
        try:
            SearchSpace.load(path)
        except SearchSpaceError as exc:  # its message starts with the file's path
            raise self.fail(label, str(exc)) from None
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            raise self.fail(label, f"{path}: unusable value ({exc})") from None

    def inline_search_space(self, entry: _Entry) -> dict[str, Any]:
        raw = self.json_like(self.mapping(entry.value, entry.label), entry.label)
        try:
            space = SearchSpace.from_json(raw, source="searchSpace")
        except SearchSpaceError as exc:  # its message starts with "searchSpace: '<key>'"
            raise ConfigError(f"{self.source}: {exc}", field=entry.label) from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise self.fail(entry.label, f"unusable value ({exc})") from None
        return space.to_json()

    def tuner(self, entry: _Entry | None) -> TunerConfig:
        if entry is None:
            return TunerConfig(name=DEFAULT_TUNER)
        section = self.mapping(entry.value, "tuner")
        self.check_keys(section, _TUNER_KEYS, _TUNER_V2, "tuner")
        fields: dict[str, _Entry] = {}
        for key, value in section.items():
            if key in _TUNER_IGNORED or value is None:
                continue
            canonical = _TUNER_V1.get(key, key)
            label = f"tuner.{key}"
            if canonical in fields:
                raise self.fail(label, f"duplicates {fields[canonical].label}; give only one of them")
            fields[canonical] = _Entry(label, value)
        class_args = self.class_args(fields.get("classArgs"))
        custom = [fields[k].label for k in ("className", "codeDirectory", "classFileName") if k in fields]
        if "name" in fields:
            if custom:
                raise self.fail(
                    custom[0],
                    f"give either {fields['name'].label} (a built-in tuner) or className (a custom tuner), "
                    "not both",
                )
            return TunerConfig(name=self.builtin_name(fields["name"]), class_args=class_args)
        if "className" not in fields:
            raise self.fail(
                "tuner.name",
                f"missing; give a built-in tuner name ({', '.join(_builtin_names())}) "
                "or className for a custom tuner",
            )
        return self.custom_tuner(fields, class_args)

    def builtin_name(self, entry: _Entry) -> str:
        name = self.string(entry, allow_empty=False)
        names = _builtin_names()
        if name not in names:
            raise self.fail(
                entry.label,
                f"unknown tuner {_quote(name)}{did_you_mean(name, names)}; built-in tuners: {', '.join(names)}",
            )
        return name

    def custom_tuner(self, fields: dict[str, _Entry], class_args: dict[str, Any]) -> TunerConfig:
        class_entry = fields["className"]
        class_name = self.string(class_entry, allow_empty=False)
        if not _IDENTIFIER_PATH.match(class_name):
            raise self.fail(
                class_entry.label, f"must be a Python name like 'module.ClassName', got {class_name!r}"
            )
        code_directory = None
        if (entry := fields.get("codeDirectory")) is not None:
            code_directory = self.path(entry, "folder")
        class_file_name = None
        if (entry := fields.get("classFileName")) is not None:
            class_file_name = self.string(entry, allow_empty=False)
            if not class_file_name.endswith(".py") or "/" in class_file_name or "\\" in class_file_name:
                raise self.fail(
                    entry.label,
                    f"must be a file name ending in .py, like 'my_tuner.py', got {class_file_name!r}",
                )
            if not _IDENTIFIER_PATH.match(class_file_name[:-3]) or "." in class_file_name[:-3]:
                raise self.fail(entry.label, f"must name a Python module file, got {class_file_name!r}")
            if code_directory is None:
                raise self.fail(entry.label, "needs tuner.codeDirectory, the folder that holds the file")
            if "." in class_name:
                raise self.fail(
                    class_entry.label, f"with classFileName give the class name only, got {class_name!r}"
                )
            if self.check_files and not (code_directory / class_file_name).is_file():
                raise self.fail(entry.label, f"file {code_directory / class_file_name} does not exist")
        elif "." not in class_name:
            raise self.fail(
                class_entry.label,
                f"must be 'module.ClassName' (or give classFileName with the class name), got {class_name!r}",
            )
        return TunerConfig(
            name=None,
            class_args=class_args,
            code_directory=code_directory,
            class_name=class_name,
            class_file_name=class_file_name,
        )

    def class_args(self, entry: _Entry | None) -> dict[str, Any]:
        if entry is None:
            return {}
        args = self.json_like(self.mapping(entry.value, entry.label), entry.label)
        mode = args.get("optimize_mode")
        if "optimize_mode" in args and mode not in OPTIMIZE_MODES:
            raise self.fail(
                f"{entry.label}.optimize_mode", f"must be maximize or minimize, got {_describe(mode)}"
            )
        return args

    def training_service(self, service: dict[str, _Entry]) -> TrainingServiceConfig:
        platform = "local"
        if (entry := service.get("platform")) is not None:
            if entry.value not in PLATFORMS:
                raise self.fail(entry.label, f"must be local or ray, got {_describe(entry.value)}")
            platform = entry.value
        if (entry := service.get("reuseMode")) is not None:
            self.boolean(entry)
        address = None
        if (entry := service.get("address")) is not None:
            address = self.string(entry, allow_empty=False)
            if platform != "ray":
                raise self.fail(entry.label, f"only for platform ray, but platform is {platform}")
        use_active = service.get("useActiveGpu")
        per_gpu = service.get("maxTrialNumberPerGpu")
        indices = service.get("gpuIndices")
        return TrainingServiceConfig(
            platform=platform,
            use_active_gpu=False if use_active is None else self.boolean(use_active),
            max_trial_number_per_gpu=1 if per_gpu is None else self.whole(per_gpu, 1),
            gpu_indices=None if indices is None else self.gpu_indices(indices),
            address=address,
        )

    def gpu_indices(self, entry: _Entry) -> tuple[int, ...]:
        """A list of GPU indices, one index, or NNI v1's comma string ``"0,1,3"``."""
        value = entry.value
        allowed = "a list of whole numbers >= 0 like [0, 1], one number, or a string like '0,1'"
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if not all(p.isdigit() and p.isascii() for p in parts):
                raise self.fail(entry.label, f"must be {allowed}, got {_describe(value)}")
            items: list[Any] = [int(p) for p in parts]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        if not items:
            raise self.fail(entry.label, f"must name at least one GPU; {allowed}")
        for item in items:
            if not (is_whole(item) and item >= 0):
                raise self.fail(entry.label, f"must be {allowed}, got {_describe(value)}")
        indices = tuple(int(i) for i in items)
        if len(set(indices)) != len(indices):
            raise self.fail(entry.label, f"names a GPU twice: {list(indices)}")
        return indices


# -- helpers --------------------------------------------------------------------------------------


def _builtin_names() -> tuple[str, ...]:
    from manager.tuners import BUILTIN_TUNERS  # the registry imports this module's types

    return tuple(BUILTIN_TUNERS)


def _kind(value: Any) -> str:
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


def _describe(value: Any) -> str:
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
    return _kind(value)


def _quote(key: Any) -> str:
    text = repr(str(key))
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...'"
