"""A config file to plain data: strict YAML, where a key given twice is an error, not a silent win.

PyYAML's safe loader keeps the last of two equal keys; a person who wrote ``trialConcurrency``
twice would never learn which one counts, so this loader refuses the file instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from manager.config.schema import ConfigError
from manager.config.values import kind


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""


def _construct_unique_mapping(loader: StrictLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
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


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml_mapping(path: Path, source: str) -> Mapping[Any, Any]:
    """The top-level mapping of the YAML file at ``path``; :class:`ConfigError` naming ``source`` if none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        obj = yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{source}: {where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if obj is None:
        raise ConfigError(f"{source}: is empty; it needs at least trialCommand")
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values, got {kind(obj)}")
    return obj
