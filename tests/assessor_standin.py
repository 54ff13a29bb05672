"""Until the assessor registry is merged, its three names as a stand-in, installed by tests only.

When ``manager.assessors.registry`` exists the real one is used and this does nothing. The
stand-in knows the built-in names and loads a custom assessor from ``codeDirectory`` /
``classFileName`` / ``className``, which is all the loop's tests use.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

import pytest

from manager.assessors.base import Assessor, AssessorError


def _custom_class(config: Any) -> type[Assessor]:
    path = config.code_directory / config.class_file_name
    spec = importlib.util.spec_from_file_location(f"standin_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, config.class_name)


def _check(config: Any) -> None:
    if config.name is None:
        _custom_class(config).validate_class_args(**dict(config.class_args))


def _create(config: Any) -> Assessor:
    if config.name is not None:
        raise AssessorError(f"assessor.name: the stand-in has no built-in {config.name!r}")
    return _custom_class(config)(**dict(config.class_args))


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import manager.assessors.registry  # noqa: F401
    except ModuleNotFoundError:
        module = types.ModuleType("manager.assessors.registry")
        module.create_assessor = _create  # type: ignore[attr-defined]
        module.check_assessor_config = _check  # type: ignore[attr-defined]
        module.builtin_assessor_names = lambda: ("Medianstop", "Curvefitting", "ASHA")  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "manager.assessors.registry", module)
