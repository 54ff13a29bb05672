"""Tuners by name: the built-in registry, custom tuners from a user's folder, and their checks.

A built-in is one line in :data:`BUILTIN_TUNERS` (``"PPO": "manager.tuners.ppo:PPOTuner"``); its
module is imported only when an experiment asks for it, so the daemon starts without torch.
``classArgs`` are the constructor's keyword arguments and are checked against its signature.
A custom tuner is a class in the user's ``codeDirectory``: a :class:`~manager.tuners.base.Tuner`
subclass, or a class written against NNI's signatures (adapted by ``NniStyleTuner``).
Either way :func:`create_tuner` returns a ``CheckedTuner``, whose architectures are always
in the full ``{_value, _idx}`` form.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from manager.tuners.base import CheckedTuner, NniStyleTuner, Tuner, TunerError, is_nni_style
from trials.messages import did_you_mean, one_line

if TYPE_CHECKING:
    from manager.config.schema import TunerConfig

#: Built-in tuner name (NNI's spelling, plus aliases) -> ``"module:Class"``.
BUILTIN_TUNERS: dict[str, str] = {
    "Random": "manager.tuners.random:RandomTuner",
    "RandomTuner": "manager.tuners.random:RandomTuner",
    "RandomNAS": "manager.tuners.random:RandomTuner",
    "PPO": "manager.tuners.ppo:PPOTuner",
    "PPOTuner": "manager.tuners.ppo:PPOTuner",
    "RegularizedEvolution": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "RegularizedEvolutionTuner": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "Evolution": "manager.tuners.evolution:RegularizedEvolutionTuner",
    "GridSearch": "manager.tuners.gridsearch:GridSearchTuner",
}

__all__ = ["BUILTIN_TUNERS", "builtin_names", "check_tuner_config", "create_tuner", "load_tuner_class"]


def builtin_names() -> tuple[str, ...]:
    """Every built-in tuner name a config may give, aliases included; no tuner module is imported."""
    return tuple(BUILTIN_TUNERS)


def create_tuner(config: TunerConfig) -> Tuner:
    """Build the tuner ``config`` names with its ``class_args``; :class:`TunerError` says what is wrong.

    A custom tuner's module is imported here (its folder is on ``sys.path`` while it loads, so it may
    import its neighbours), never in :func:`check_tuner_config`.
    """
    cls = load_tuner_class(config)
    label = _label(config)
    args = dict(config.class_args)
    _check_class_args(cls, args, label)
    try:
        instance = cls(**args)
    except TunerError:
        raise
    except Exception as exc:
        raise TunerError(f"tuner {label}: constructor failed: {one_line(exc)}") from None
    inner = instance if isinstance(instance, Tuner) else NniStyleTuner(instance)
    return CheckedTuner(inner, label)


def check_tuner_config(config: TunerConfig) -> None:
    """Check ``config`` at create time without running a user's code.

    A built-in is checked fully (name, argument names, argument values when it validates them).
    A custom tuner is checked as far as its files go: the folder, the class file or the module
    path; whether the class exists is known only when :func:`create_tuner` imports it.
    """
    _check_shape(config)
    if config.name is not None:
        cls = _builtin_class(config.name)
        args = dict(config.class_args)
        _check_class_args(cls, args, config.name)
        return
    _locate_custom_module(config)


def load_tuner_class(config: TunerConfig) -> type:
    """The tuner class: a built-in's, or a custom one imported from its folder."""
    _check_shape(config)
    if config.name is not None:
        return _builtin_class(config.name)
    return _custom_class(config)


# -- built-ins ------------------------------------------------------------------------------------


def _builtin_class(name: str) -> type:
    target = BUILTIN_TUNERS.get(name)
    if target is None:
        names = ", ".join(BUILTIN_TUNERS)
        raise TunerError(
            f"tuner.name: unknown tuner {name!r}{did_you_mean(name, BUILTIN_TUNERS)}; built-in: {names}"
        )
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def _check_class_args(cls: type, args: dict[str, Any], label: str) -> None:
    """Argument names against the constructor's signature, then values if the class checks them."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            accepted = [
                p.name
                for p in params
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            ]
            for key in args:
                if key not in accepted:
                    listed = ", ".join(accepted) if accepted else "none"
                    raise TunerError(
                        f"tuner.classArgs.{key}: {label} takes no argument {key!r}"
                        f"{did_you_mean(key, accepted)}; accepted: {listed}"
                    )
        required = [
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        missing = [name for name in required if name not in args]
        if missing:
            raise TunerError(f"tuner.classArgs.{missing[0]}: missing; {label} requires it")
    if isinstance(cls, type) and issubclass(cls, Tuner):
        try:
            cls.validate_class_args(**args)
        except TunerError:
            raise
        except Exception as exc:
            raise TunerError(f"tuner.classArgs: {label} refused them: {one_line(exc)}") from None


# -- custom tuners ---------------------------------------------------------------------------------


def _check_shape(config: TunerConfig) -> None:
    if config.name is None and not config.class_name:
        raise TunerError("tuner: give name (a built-in tuner) or className (a custom tuner)")
    if config.name is not None and (config.class_name or config.code_directory or config.class_file_name):
        raise TunerError("tuner: give either name (a built-in tuner) or className (a custom tuner), not both")


def _split_class_name(config: TunerConfig) -> tuple[str | None, str]:
    """(module, class) of a custom tuner; module None when ``class_file_name`` says where it is."""
    assert config.class_name is not None
    if config.class_file_name is not None:
        return None, config.class_name
    module, _, class_name = config.class_name.rpartition(".")
    if not module:
        raise TunerError(
            f"tuner.className: give 'module.ClassName' or a classFileName, got {config.class_name!r}"
        )
    return module, class_name


def _locate_custom_module(config: TunerConfig) -> Path | None:
    """The file a custom tuner is loaded from (None for an installed module); no user code runs."""
    module, _ = _split_class_name(config)
    folder = config.code_directory
    if folder is not None and not folder.is_dir():
        raise TunerError(f"tuner.codeDirectory: folder {folder} does not exist")
    if config.class_file_name is not None:
        if folder is None:
            raise TunerError("tuner.classFileName: needs tuner.codeDirectory, the folder that holds it")
        path = folder / config.class_file_name
        if not path.is_file():
            raise TunerError(f"tuner.classFileName: file {path} does not exist")
        return path
    assert module is not None
    top = module.split(".")[0]
    if folder is None:
        if importlib.util.find_spec(top) is None:
            raise TunerError(f"tuner.className: no module {top!r} is installed; give codeDirectory")
        return None
    spec = importlib.machinery.PathFinder.find_spec(top, [str(folder)])
    if spec is None:
        raise TunerError(f"tuner.className: no module {top!r} (file {top}.py) in {folder}")
    if "." not in module and spec.submodule_search_locations is None and spec.origin:
        return Path(spec.origin)
    return None


def _custom_class(config: TunerConfig) -> type:
    module_name, class_name = _split_class_name(config)
    path = _locate_custom_module(config)
    label = config.class_name or ""
    field = "tuner.classFileName" if config.class_file_name is not None else "tuner.className"
    try:
        if path is not None and path.suffix == ".py":
            module = _load_file(path, config.code_directory)
        else:
            assert module_name is not None
            module = _import_with_path(module_name, config.code_directory)
    except TunerError:
        raise
    except BaseException as exc:  # a user's module may exit, raise anything, or have a syntax error
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = path if path is not None else module_name
        raise TunerError(f"{field}: importing {where} failed: {one_line(exc)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [name for name, value in vars(module).items() if isinstance(value, type)]
        raise TunerError(
            f"tuner.className: {module.__name__} has no class {class_name!r}{did_you_mean(class_name, classes)}"
        )
    if not isinstance(cls, type):
        raise TunerError(f"tuner.className: {label} is not a class")
    if not issubclass(cls, Tuner) and not is_nni_style(cls):
        raise TunerError(
            f"tuner.className: {label} is not a tuner; subclass manager.tuners.base.Tuner or define "
            "update_search_space, generate_parameters and receive_trial_result"
        )
    return cls


def _load_file(path: Path, folder: Path | None) -> ModuleType:
    """Import one file under a name unique to its path, so two experiments' ``my_tuner.py`` never clash."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"nasctl_custom_tuner_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TunerError(f"tuner.classFileName: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    with _on_sys_path(folder):
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    return module


def _import_with_path(module_name: str, folder: Path | None) -> ModuleType:
    with _on_sys_path(folder):
        return importlib.import_module(module_name)


@contextlib.contextmanager
def _on_sys_path(folder: Path | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while a user's module loads, then last for good.

    First, so the module's neighbours win over same-named installed modules while it imports
    them; last afterwards (as NNI appends ``codeDir``), so its later imports still work without
    the user's files shadowing the daemon's own modules.
    """
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)
        if entry not in sys.path:
            sys.path.append(entry)


def _label(config: TunerConfig) -> str:
    return config.name if config.name is not None else str(config.class_name)
