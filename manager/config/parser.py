"""The v2 config parser: every field, its checks, and the message each mistake gets.

A config arrives as YAML (``nasctl create --config exp.yaml``, :func:`load_config`) or as its JSON
body over REST (:func:`parse_config`). It is written in NNI v2's camelCase; NNI v1 keys are
translated by :mod:`manager.config.nni_v1`. An invalid config raises one :class:`ConfigError`
and creates nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from manager.assessors.base import AssessorError
from manager.assessors.registry import builtin_assessor_names, check_assessor_config
from manager.config import nni_v1
from manager.config.schema import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    DEFAULT_TUNER,
    MAX_COUNT,
    ConfigError,
    ExperimentConfig,
    TrainingServiceConfig,
    TunerConfig,
)
from manager.config.values import Entry, ValueReader, describe, quote
from manager.training.registry import platforms
from manager.tuners.registry import builtin_names
from trials.errors import SearchSpaceError
from trials.messages import did_you_mean
from trials.metrics import OPTIMIZE_MODES
from trials.numbers import is_whole
from trials.objectives import ObjectiveError, Objectives
from trials.searchspace import SearchSpace

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: Ray's actor scheduling, by the names of its placement strategies.
PLACEMENT_STRATEGIES = ("PACK", "SPREAD")
#: Ray refuses resource amounts finer than this.
_RESOURCE_STEP = 0.0001
#: Keys of trainingService that only the Ray platform reads.
_RAY_ONLY = ("address", "resources", "placementStrategy")

#: nasctl's own top-level key (NNI has none): stop after this many FAILED trials in a row.
MAX_FAILURES = "maxConsecutiveFailures"
#: nasctl's own top-level key: modules a warm launcher imports once for every trial (local only).
PRELOAD = "trialPreload"
#: What ``trialPreload: true`` preloads.
DEFAULT_PRELOAD = ("torch",)
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
#: Keys whose null is a value (it turns the key's default off) rather than "not given".
NULL_IS_A_VALUE = (MAX_FAILURES,)

#: NNI v2 top-level keys (the canonical form), and nasctl's.
V2_KEYS = (
    "experimentName",
    "searchSpaceFile",
    "searchSpace",
    "modelFile",
    "trialCommand",
    "trialCodeDirectory",
    "trialConcurrency",
    "trialGpuNumber",
    "trialCpuNumber",
    "maxTrialNumber",
    "maxExperimentDuration",
    "maxTrialDuration",
    MAX_FAILURES,
    PRELOAD,
    "tuner",
    "assessor",
    "trainingService",
    "objectives",
    "constraints",
)
#: Keys that nasctl accepts only as false (what true would ask for, it does not do).
FALSE_ONLY = ("useAnnotation", "multiPhase")
#: Harmless keys accepted and ignored -> the kind of value checked (so a typo in a value still shows).
IGNORED = {
    **nni_v1.IGNORED,
    "logLevel": "level",
    "debug": "bool",
    "nniManagerIp": "string",
    "tunerGpuIndices": "any",
}
#: Keys that mean something nasctl does not do; silently ignoring them would mislead.
_UNSUPPORTED = {
    "advisor": "advisors are not supported; use tuner",
    "experimentWorkingDirectory": "not supported; nasctl keeps experiments under $NASCTL_HOME",
    "sharedStorage": "not supported; remove the key",
    **nni_v1.UNSUPPORTED,
}
_TOP_KEYS = (*V2_KEYS, *nni_v1.TRANSLATED, *FALSE_ONLY, *IGNORED, *_UNSUPPORTED)
SERVICE_KEYS = (
    "platform",
    "useActiveGpu",
    "maxTrialNumberPerGpu",
    "gpuIndices",
    "address",
    "resources",
    "placementStrategy",
    "reuseMode",
)
#: Tuner and assessor keys: v2 spelling first; v1 spellings are renamed.
ALGORITHM_V2 = ("name", "className", "codeDirectory", "classFileName", "classArgs")
#: NNI's key that sends an early-stopped trial's last intermediate result to the tuner as its final one.
INCLUDE_INTERMEDIATE = "includeIntermediateResults"
_TUNER_V2 = (*ALGORITHM_V2, INCLUDE_INTERMEDIATE)
_TUNER_KEYS = (*_TUNER_V2, *nni_v1.TUNER_RENAMES, *nni_v1.TUNER_IGNORED)
_ASSESSOR_KEYS = (*ALGORITHM_V2, *nni_v1.ASSESSOR_RENAMES, *nni_v1.ASSESSOR_IGNORED)


def parse_config(obj: Any, base_dir: Path, source: str = "config") -> ExperimentConfig:
    """Validate a config (the YAML as a dict); relative paths resolve against ``base_dir``.

    Raises :class:`ConfigError` for every kind of bad input, never another exception type.
    """
    return _Parser(source, base_dir, check_files=True).parse(obj)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML config file; its folder is the base of its relative paths."""
    from manager.config.yaml_loader import load_yaml_mapping  # PyYAML: the daemon, given JSON, never needs it

    source = str(path)
    obj = load_yaml_mapping(Path(path), source)
    base_dir = Path(os.path.abspath(path)).parent
    return parse_config(obj, base_dir, source)


class _Parser(ValueReader):
    """One validation pass over a whole config."""

    def parse(self, obj: Any) -> ExperimentConfig:
        try:
            return self.experiment(obj)
        except RecursionError:
            raise self.fail(None, "is nested too deeply to be a config") from None

    def experiment(self, obj: Any) -> ExperimentConfig:
        top = self.mapping(obj, None)
        self.check_keys(top, _TOP_KEYS, V2_KEYS, None)
        fields: dict[str, Entry] = {}
        service: dict[str, Entry] = {}

        def put(target: dict[str, Entry], key: str, label: str, value: Any) -> None:
            if value is None and key not in NULL_IS_A_VALUE:
                return
            if key in target:
                raise self.fail(label, f"duplicates {target[key].label}; give only one of them")
            target[key] = Entry(label, value)

        def put_field(key: str, label: str, value: Any) -> None:
            put(fields, key, label, value)

        def put_service(key: str, label: str, value: Any) -> None:
            put(service, key, label, value)

        for key, value in top.items():
            if key == "trainingService":
                if value is None:
                    continue
                section = self.mapping(value, "trainingService")
                self.check_keys(section, SERVICE_KEYS, SERVICE_KEYS[:-1], "trainingService")
                for sub, item in section.items():
                    put_service(sub, f"trainingService.{sub}", item)
            elif key in V2_KEYS:
                put_field(key, key, value)
            elif key in nni_v1.TRANSLATED:
                nni_v1.translate(self, key, value, put_field, put_service)
            elif key in FALSE_ONLY:
                if value is not None and self.boolean(Entry(key, value)):
                    raise self.fail(key, "must be false; nasctl does not support it")
            elif key in IGNORED:
                self.ignored(key, value)
            else:
                raise self.fail(key, _UNSUPPORTED[key])
        return self.build(fields, service)

    def ignored(self, key: str, value: Any) -> None:
        kind = IGNORED[key]
        if value is None or kind == "any":
            return
        entry = Entry(key, value)
        if kind == "string":
            self.string(entry)
        elif kind == "bool":
            self.boolean(entry)
        elif kind == "level" and value not in LOG_LEVELS:
            raise self.fail(key, f"must be one of {', '.join(LOG_LEVELS)}, got {describe(value)}")
        elif kind == "logCollection" and value not in ("http", "none"):
            raise self.fail(key, f"must be http or none, got {describe(value)}")

    def build(self, fields: dict[str, Entry], service: dict[str, Entry]) -> ExperimentConfig:
        def get(key: str) -> Entry | None:
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

        trial_gpu_number = optional("trialGpuNumber", lambda e: self.whole(e, 0)) or 0
        trial_cpu_number = optional("trialCpuNumber", self.cpu_number)
        service_config = self.training_service(service)
        if trial_cpu_number is not None and service_config.platform == "local":
            raise self.fail(
                "trialCpuNumber",
                "only for platform ray (local trials are not limited in CPUs), but platform is local",
            )
        cpus = 1.0 if trial_cpu_number is None else trial_cpu_number
        preload = self.preload(get(PRELOAD), service_config.platform)
        tuner, include_intermediate = self.tuner(get("tuner"))
        objectives = self.objectives(get("objectives"), get("constraints"), tuner)
        if objectives is not None and include_intermediate:
            raise self.fail(
                "tuner.includeIntermediateResults",
                "not with objectives: an intermediate result is one number, not the dict of metrics the "
                "tuner needs; remove includeIntermediateResults",
            )
        return ExperimentConfig(
            experiment_name=experiment_name,
            search_space_file=search_space_file,
            search_space=search_space,
            model_file=model_file,
            trial_command=trial_command,
            trial_code_directory=trial_code_directory,
            trial_concurrency=optional("trialConcurrency", lambda e: self.whole(e, 1)) or 1,
            trial_gpu_number=trial_gpu_number,
            trial_cpu_number=cpus,
            max_trial_number=optional("maxTrialNumber", lambda e: self.whole(e, 1)),
            max_experiment_duration=optional("maxExperimentDuration", self.duration),
            max_trial_duration=optional("maxTrialDuration", self.duration),
            max_consecutive_failures=self.failure_limit(get(MAX_FAILURES)),
            tuner=tuner,
            assessor=self.assessor(get("assessor")),
            include_intermediate_results=include_intermediate,
            trial_preload=preload,
            training_service=replace(
                service_config,
                trial_cpu_number=cpus,
                trial_gpu_number=trial_gpu_number,
                trial_preload=preload,
            ),
            objectives=objectives,
        )

    def preload(self, entry: Entry | None, platform: str) -> tuple[str, ...]:
        """trialPreload: true (torch), false or [] (off), or a list of module names; local only."""
        if entry is None or entry.value is False:
            return ()
        value = entry.value
        names = DEFAULT_PRELOAD if value is True else value
        if not isinstance(names, (list, tuple)) or not all(
            isinstance(n, str) and MODULE_NAME.fullmatch(n) for n in names
        ):
            raise self.fail(
                entry.label,
                f"must be true (preload torch), false, or a list of module names such as [torch, numpy], "
                f"got {describe(value)}",
            )
        if names and platform != "local":
            raise self.fail(
                entry.label,
                f"only for platform local (trials forked on this machine), but platform is {platform}",
            )
        return tuple(dict.fromkeys(names))

    def failure_limit(self, entry: Entry | None) -> int | None:
        """maxConsecutiveFailures: the default when absent; 0 or null turn it off."""
        if entry is None:
            return DEFAULT_MAX_CONSECUTIVE_FAILURES
        if entry.value is None or (is_whole(entry.value) and entry.value == 0):
            return None
        if not (is_whole(entry.value) and 1 <= entry.value <= MAX_COUNT):
            raise self.fail(
                entry.label,
                f"must be a whole number from 1 to {MAX_COUNT} (failed trials in a row that end the "
                f"experiment), or 0 or null to never stop for failures, got {describe(entry.value)}",
            )
        return int(entry.value)

    def objectives(
        self, entry: Entry | None, constraints: Entry | None, tuner: TunerConfig
    ) -> Objectives | None:
        """``objectives`` and ``constraints`` (several metrics); they replace ``optimize_mode``."""
        if entry is None:
            if constraints is not None:
                raise self.fail(constraints.label, "needs objectives, the metrics the constraints go with")
            return None
        if "optimize_mode" in tuner.class_args:
            raise self.fail(
                "tuner.classArgs.optimize_mode",
                "not used with objectives, which set each metric's mode; remove optimize_mode",
            )
        try:
            return Objectives.from_config(entry.value, None if constraints is None else constraints.value)
        except ObjectiveError as exc:
            problem = str(exc)
            raise ConfigError(f"{self.source}: {problem}", field=problem.split(":")[0]) from None

    def search_space_content(self, label: str, path: Path) -> None:
        try:
            SearchSpace.load(path)
        except SearchSpaceError as exc:  # its message starts with the file's path
            raise self.fail(label, str(exc)) from None
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            raise self.fail(label, f"{path}: unusable value ({exc})") from None

    def inline_search_space(self, entry: Entry) -> dict[str, Any]:
        raw = self.json_like(self.mapping(entry.value, entry.label), entry.label)
        try:
            space = SearchSpace.from_json(raw, source="searchSpace")
        except SearchSpaceError as exc:  # its message starts with "searchSpace: '<key>'"
            raise ConfigError(f"{self.source}: {exc}", field=entry.label) from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise self.fail(entry.label, f"unusable value ({exc})") from None
        return space.to_json()

    # -- tuner and assessor ---------------------------------------------------------------------
    def tuner(self, entry: Entry | None) -> tuple[TunerConfig, bool]:
        """The tuner section, and its ``includeIntermediateResults`` (false when absent)."""
        if entry is None:
            return TunerConfig(name=DEFAULT_TUNER), False
        section = self.mapping(entry.value, "tuner")
        self.check_keys(section, _TUNER_KEYS, _TUNER_V2, "tuner")
        include = section.get(INCLUDE_INTERMEDIATE)
        flag = False if include is None else self.boolean(Entry(f"tuner.{INCLUDE_INTERMEDIATE}", include))
        rest = {k: v for k, v in section.items() if k != INCLUDE_INTERMEDIATE}
        renames, ignored = nni_v1.TUNER_RENAMES, nni_v1.TUNER_IGNORED
        return self.algorithm(rest, "tuner", builtin_names(), renames, ignored), flag

    def assessor(self, entry: Entry | None) -> TunerConfig | None:
        """The assessor section (NNI's shape), checked by the assessor registry at once."""
        if entry is None:
            return None
        section = self.mapping(entry.value, "assessor")
        self.check_keys(section, _ASSESSOR_KEYS, ALGORITHM_V2, "assessor")
        renames, ignored = nni_v1.ASSESSOR_RENAMES, nni_v1.ASSESSOR_IGNORED
        config = self.algorithm(section, "assessor", builtin_assessor_names(), renames, ignored)
        if self.check_files:
            try:
                check_assessor_config(config)
            except AssessorError as exc:
                problem = str(exc)
                if problem.startswith("assessor"):
                    raise ConfigError(f"{self.source}: {problem}", field="assessor") from None
                raise self.fail("assessor", problem) from None
        return config

    def algorithm(
        self,
        section: Any,
        kind: str,
        names: tuple[str, ...],
        renames: dict[str, str],
        ignored: tuple[str, ...],
    ) -> TunerConfig:
        """A tuner or assessor section: a built-in by ``name`` or a user's class."""
        fields: dict[str, Entry] = {}
        for key, value in section.items():
            if key in ignored or value is None:
                continue
            canonical = renames.get(key, key)
            label = f"{kind}.{key}"
            if canonical in fields:
                raise self.fail(label, f"duplicates {fields[canonical].label}; give only one of them")
            fields[canonical] = Entry(label, value)
        class_args = self.class_args(fields.get("classArgs"))
        custom = [fields[k].label for k in ("className", "codeDirectory", "classFileName") if k in fields]
        if "name" in fields:
            if custom:
                raise self.fail(
                    custom[0],
                    f"give either {fields['name'].label} (a built-in {kind}) or className (a custom {kind}), "
                    "not both",
                )
            return TunerConfig(name=self.builtin_name(fields["name"], kind, names), class_args=class_args)
        if "className" not in fields:
            raise self.fail(
                f"{kind}.name",
                f"missing; give a built-in {kind} name ({', '.join(names)}) or className for a custom {kind}",
            )
        return self.custom_class(fields, class_args, kind)

    def builtin_name(self, entry: Entry, kind: str, names: tuple[str, ...]) -> str:
        name = self.string(entry, allow_empty=False)
        if name not in names:
            raise self.fail(
                entry.label,
                f"unknown {kind} {quote(name)}{did_you_mean(name, names)}; built-in {kind}s: {', '.join(names)}",
            )
        return name

    def custom_class(self, fields: dict[str, Entry], class_args: dict[str, Any], kind: str) -> TunerConfig:
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
                    f"must be a file name ending in .py, like 'my_{kind}.py', got {class_file_name!r}",
                )
            if not _IDENTIFIER_PATH.match(class_file_name[:-3]) or "." in class_file_name[:-3]:
                raise self.fail(entry.label, f"must name a Python module file, got {class_file_name!r}")
            if code_directory is None:
                raise self.fail(entry.label, f"needs {kind}.codeDirectory, the folder that holds the file")
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

    def class_args(self, entry: Entry | None) -> dict[str, Any]:
        if entry is None:
            return {}
        args = self.json_like(self.mapping(entry.value, entry.label), entry.label)
        mode = args.get("optimize_mode")
        if "optimize_mode" in args and mode not in OPTIMIZE_MODES:
            raise self.fail(
                f"{entry.label}.optimize_mode", f"must be maximize or minimize, got {describe(mode)}"
            )
        return args

    # -- training service -------------------------------------------------------------------------
    def training_service(self, service: dict[str, Entry]) -> TrainingServiceConfig:
        platform = "local" if (entry := service.get("platform")) is None else self.platform(entry)
        if (entry := service.get("reuseMode")) is not None:
            self.boolean(entry)
        for key in _RAY_ONLY:
            if (entry := service.get(key)) is not None and platform != "ray":
                raise self.fail(entry.label, f"only for platform ray, but platform is {platform}")
        address = None
        if (entry := service.get("address")) is not None:
            address = self.ray_address(entry)
        resources = {} if (entry := service.get("resources")) is None else self.ray_resources(entry)
        placement = "PACK"
        if (entry := service.get("placementStrategy")) is not None:
            if entry.value not in PLACEMENT_STRATEGIES:
                raise self.fail(entry.label, f"must be PACK or SPREAD, got {describe(entry.value)}")
            placement = entry.value
        use_active = service.get("useActiveGpu")
        per_gpu = service.get("maxTrialNumberPerGpu")
        indices = service.get("gpuIndices")
        return TrainingServiceConfig(
            platform=platform,
            use_active_gpu=False if use_active is None else self.boolean(use_active),
            max_trial_number_per_gpu=1 if per_gpu is None else self.whole(per_gpu, 1),
            gpu_indices=None if indices is None else self.gpu_indices(indices),
            address=address,
            resources=resources,
            placement_strategy=placement,
        )

    def ray_address(self, entry: Entry) -> str:
        """``auto``, ``host:port`` (the head's GCS) or ``ray://host:port`` (Ray Client)."""
        address = self.string(entry, allow_empty=False).strip()
        if address == "auto":
            return address
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or "/" in host or not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
            raise self.fail(
                entry.label, f"must be auto, host:port or ray://host:port, got {describe(entry.value)}"
            )
        return address

    def ray_resources(self, entry: Entry) -> dict[str, float]:
        """Ray custom resources one trial needs: ``{name: amount}``, amounts > 0 in steps of 0.0001."""
        section = self.mapping(entry.value, entry.label)
        out: dict[str, float] = {}
        for name, amount in section.items():
            label = f"{entry.label}.{name}"
            if not isinstance(name, str) or not name.strip():
                raise self.fail(
                    entry.label, f"resource names must be non-empty strings, got {describe(name)}"
                )
            if name in ("CPU", "GPU"):
                raise self.fail(label, f"give trial{name.title()}Number instead")
            out[name] = self.ray_amount(Entry(label, amount))
        return out

    def cpu_number(self, entry: Entry) -> float:
        return self.ray_amount(entry)

    def ray_amount(self, entry: Entry) -> float:
        value = entry.value
        allowed = "a number > 0 (fractions in steps of 0.0001)"
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        # the range before the steps: round() of a huge or infinite amount overflows
        if (
            not (number and 0 < value <= MAX_COUNT)
            or abs(value / _RESOURCE_STEP - round(value / _RESOURCE_STEP)) > 1e-6
        ):
            raise self.fail(entry.label, f"must be {allowed}, got {describe(value)}")
        return float(value)

    def platform(self, entry: Entry) -> str:
        """One of the training registry's platforms: the config is refused before the loop would be."""
        available = platforms()
        value = entry.value
        if isinstance(value, str) and value in available:
            return value
        allowed = _one_of(available)
        hint = did_you_mean(value, available) if isinstance(value, str) else ""
        raise self.fail(entry.label, f"must be {allowed}, got {describe(value)}{hint}")

    def gpu_indices(self, entry: Entry) -> tuple[int, ...]:
        """A list of GPU indices, one index, or NNI v1's comma string ``"0,1,3"``."""
        value = entry.value
        allowed = "a list of whole numbers >= 0 like [0, 1], one number, or a string like '0,1'"
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if not all(p.isdigit() and p.isascii() for p in parts):
                raise self.fail(entry.label, f"must be {allowed}, got {describe(value)}")
            items: list[Any] = [int(p) for p in parts]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        if not items:
            raise self.fail(entry.label, f"must name at least one GPU; {allowed}")
        for item in items:
            if not (is_whole(item) and item >= 0):
                raise self.fail(entry.label, f"must be {allowed}, got {describe(value)}")
        indices = tuple(int(i) for i in items)
        if len(set(indices)) != len(indices):
            raise self.fail(entry.label, f"names a GPU twice: {list(indices)}")
        return indices


def _one_of(names: tuple[str, ...]) -> str:
    """``local``, ``local or ray``, ``a, b or c``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"
