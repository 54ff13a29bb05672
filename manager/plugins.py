"""Loading a plug-in class (a tuner, an assessor) by name or from a user's folder, and checking its arguments.

Tuners and assessors are found the same way, so one module does it for both: a built-in is one
line ``"Name": "module:Class"`` imported only when an experiment asks for it (the daemon starts
without torch or scipy), and a custom class comes from the user's ``codeDirectory`` by
``className`` (and ``classFileName``). ``classArgs`` are the constructor's keyword arguments and
are checked against its signature, then by the class's own ``validate_class_args`` when it is
one of ours. Every message names the config field (``tuner.classArgs.seed``,
``assessor.className``) and is raised as the kind's own error class.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from trials.messages import did_you_mean, one_line


class PluginConfig(Protocol):
    """The fields of ``manager.config.schema.TunerConfig`` the loader reads (name None: custom)."""

    @property
    def name(self) -> str | None: ...
    @property
    def class_args(self) -> Mapping[str, Any]: ...
    @property
    def code_directory(self) -> Path | None: ...
    @property
    def class_name(self) -> str | None: ...
    @property
    def class_file_name(self) -> str | None: ...


@dataclass(frozen=True)
class PluginKind:
    """One kind of plug-in: its config key, its built-ins, its base class and its error."""

    #: The config key and the word in messages: ``"tuner"``, ``"assessor"``.
    key: str
    #: Built-in name -> ``"module:Class"``; read at each lookup, so a test may add a line to it.
    builtins: Mapping[str, str]
    #: Our abstract base class; its subclasses get ``validate_class_args`` called.
    base: type
    #: True for a class written against NNI's signatures, which the caller adapts.
    is_nni_style: Callable[[type], bool]
    #: The methods an NNI-style class defines, for the message refusing a class that has neither.
    nni_methods: str
    #: The exception every message is raised as (a ValueError subclass).
    error: type[ValueError]


def label(config: PluginConfig) -> str:
    """The name a message uses for the configured class: the built-in's name or the className."""
    return config.name if config.name is not None else str(config.class_name)


def load_class(kind: PluginKind, config: PluginConfig) -> type:
    """The configured class: a built-in's, or a custom one imported from its folder."""
    check_shape(kind, config)
    if config.name is not None:
        return builtin_class(kind, config.name)
    return custom_class(kind, config)


def check_config(kind: PluginKind, config: PluginConfig) -> None:
    """Check ``config`` at create time without running a user's code.

    A built-in is checked fully (name, argument names, argument values when it validates them);
    a custom class as far as its files go, since whether the class exists is known only on import.
    """
    check_shape(kind, config)
    if config.name is not None:
        check_class_args(kind, builtin_class(kind, config.name), dict(config.class_args), config.name)
        return
    locate_custom_module(kind, config)


def construct(kind: PluginKind, config: PluginConfig) -> Any:
    """An instance of the configured class built with its checked ``classArgs``."""
    cls = load_class(kind, config)
    args = dict(config.class_args)
    check_class_args(kind, cls, args, label(config))
    try:
        return cls(**args)
    except kind.error:
        raise
    except Exception as exc:
        raise kind.error(f"{kind.key} {label(config)}: constructor failed: {one_line(exc)}") from None


# -- built-ins ------------------------------------------------------------------------------------


def builtin_class(kind: PluginKind, name: str) -> type:
    target = kind.builtins.get(name)
    if target is None:
        names = ", ".join(kind.builtins)
        raise kind.error(
            f"{kind.key}.name: unknown {kind.key} {name!r}{did_you_mean(name, kind.builtins)}; built-in: {names}"
        )
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def check_class_args(kind: PluginKind, cls: type, args: dict[str, Any], name: str) -> None:
    """Argument names against the constructor's signature, then values if the class checks them."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            accepted = [p.name for p in params if p.kind in named]
            for key in args:
                if key not in accepted:
                    listed = ", ".join(accepted) if accepted else "none"
                    raise kind.error(
                        f"{kind.key}.classArgs.{key}: {name} takes no argument {key!r}"
                        f"{did_you_mean(key, accepted)}; accepted: {listed}"
                    )
        required = [p.name for p in params if p.default is inspect.Parameter.empty and p.kind in named]
        missing = [arg for arg in required if arg not in args]
        if missing:
            raise kind.error(f"{kind.key}.classArgs.{missing[0]}: missing; {name} requires it")
    if isinstance(cls, type) and issubclass(cls, kind.base):
        try:
            cls.validate_class_args(**args)  # type: ignore[attr-defined]
        except kind.error:
            raise
        except Exception as exc:
            raise kind.error(f"{kind.key}.classArgs: {name} refused them: {one_line(exc)}") from None


# -- custom classes --------------------------------------------------------------------------------


def check_shape(kind: PluginKind, config: PluginConfig) -> None:
    key = kind.key
    if config.name is None and not config.class_name:
        raise kind.error(f"{key}: give name (a built-in {key}) or className (a custom {key})")
    if config.name is not None and (config.class_name or config.code_directory or config.class_file_name):
        raise kind.error(
            f"{key}: give either name (a built-in {key}) or className (a custom {key}), not both"
        )


def _split_class_name(kind: PluginKind, config: PluginConfig) -> tuple[str | None, str]:
    """(module, class) of a custom class; module None when ``class_file_name`` says where it is."""
    assert config.class_name is not None
    if config.class_file_name is not None:
        return None, config.class_name
    module, _, class_name = config.class_name.rpartition(".")
    if not module:
        raise kind.error(
            f"{kind.key}.className: give 'module.ClassName' or a classFileName, got {config.class_name!r}"
        )
    return module, class_name


def locate_custom_module(kind: PluginKind, config: PluginConfig) -> Path | None:
    """The file a custom class is loaded from (None for an installed module); no user code runs."""
    key = kind.key
    module, _ = _split_class_name(kind, config)
    folder = config.code_directory
    if folder is not None and not folder.is_dir():
        raise kind.error(f"{key}.codeDirectory: folder {folder} does not exist")
    if config.class_file_name is not None:
        if folder is None:
            raise kind.error(f"{key}.classFileName: needs {key}.codeDirectory, the folder that holds it")
        path = folder / config.class_file_name
        if not path.is_file():
            raise kind.error(f"{key}.classFileName: file {path} does not exist")
        return path
    assert module is not None
    top = module.split(".")[0]
    if folder is None:
        if importlib.util.find_spec(top) is None:
            raise kind.error(f"{key}.className: no module {top!r} is installed; give codeDirectory")
        return None
    spec = importlib.machinery.PathFinder.find_spec(top, [str(folder)])
    if spec is None:
        raise kind.error(f"{key}.className: no module {top!r} (file {top}.py) in {folder}")
    if "." not in module and spec.submodule_search_locations is None and spec.origin:
        return Path(spec.origin)
    return None


def custom_class(kind: PluginKind, config: PluginConfig) -> type:
    key = kind.key
    module_name, class_name = _split_class_name(kind, config)
    path = locate_custom_module(kind, config)
    name = config.class_name or ""
    field = f"{key}.classFileName" if config.class_file_name is not None else f"{key}.className"
    try:
        if path is not None and path.suffix == ".py":
            module = _load_file(kind, path, config.code_directory)
        else:
            assert module_name is not None
            module = _import_with_path(module_name, config.code_directory)
    except kind.error:
        raise
    except BaseException as exc:  # a user's module may exit, raise anything, or have a syntax error
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = path if path is not None else module_name
        raise kind.error(f"{field}: importing {where} failed: {one_line(exc)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [n for n, value in vars(module).items() if isinstance(value, type)]
        raise kind.error(
            f"{key}.className: {module.__name__} has no class {class_name!r}{did_you_mean(class_name, classes)}"
        )
    if not isinstance(cls, type):
        raise kind.error(f"{key}.className: {name} is not a class")
    if not issubclass(cls, kind.base) and not kind.is_nni_style(cls):
        base = f"{kind.base.__module__}.{kind.base.__qualname__}"
        article = "an" if key[0] in "aeiou" else "a"
        raise kind.error(
            f"{key}.className: {name} is not {article} {key}; subclass {base} or define {kind.nni_methods}"
        )
    return cls


def _load_file(kind: PluginKind, path: Path, folder: Path | None) -> ModuleType:
    """Import one file under a name unique to its path, so two experiments' ``my_tuner.py`` never clash."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"nasctl_custom_{kind.key}_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise kind.error(f"{kind.key}.classFileName: cannot load {path} as a Python module")
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


# -- a user's NNI-style object -------------------------------------------------------------------


def optional_method(user: Any, name: str, arity: int) -> Callable[..., Any] | None:
    """The user object's method ``name`` if it takes ``arity`` positional arguments, else None
    (NNI's own optional methods may take other arguments: its checkpoint ones take none of ours)."""
    method = getattr(user, name, None)
    if not callable(method):
        return None
    try:
        inspect.signature(method).bind(*([None] * arity))
    except (TypeError, ValueError):
        return None
    return method


def user_checkpoint(user: Any) -> dict[str, Any] | None:
    """``user.save_checkpoint()`` when it has our form and returns a dict; None otherwise."""
    method = optional_method(user, "save_checkpoint", 0)
    state = method() if method is not None else None
    return state if isinstance(state, dict) else None


def restore_user_checkpoint(user: Any, state: dict[str, Any]) -> None:
    """``user.load_checkpoint(state)`` when it has our form."""
    method = optional_method(user, "load_checkpoint", 1)
    if method is not None:
        method(state)
