"""Checked access to untrusted YAML: parsing with duplicate-key detection, typed getters.

Owns the mechanics `config.py` builds its schema on: a `SafeLoader` whose mapping
constructor rejects duplicate keys (PyYAML silently keeps the last one, which would
hide a second camera with the same name), and `Section`, a view of one mapping that
knows its key path (`cameras.gate`) so every error names file, key and problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import yaml

from focusguard.common.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKeyError(Exception):
    def __init__(self, path: str, first_line: int, line: int) -> None:
        super().__init__(path)
        self.path, self.first_line, self.line = path, first_line, line


class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """SafeLoader that raises on duplicate mapping keys and remembers each mapping's key path."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._paths: dict[int, str] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._index_paths(node, "")
        return super().construct_document(node)

    def _index_paths(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._paths:  # an alias: already indexed
            return
        self._paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                self._index_paths(value_node, f"{path}.{key}" if path else str(key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index_paths(item, f"{path}[{index}]")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in seen:
                base = self._paths.get(id(node), "")
                raise _DuplicateKeyError(f"{base}.{key}" if base else str(key), seen[key], line)
            seen[key] = line
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys become `ConfigError`."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except _DuplicateKeyError as err:
        what = (
            "duplicate camera name" if err.path.startswith("cameras.") and err.path.count(".") == 1 else "duplicate key"
        )
        raise ConfigError(file, err.path, f"{what} (lines {err.first_line} and {err.line})") from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        problem = err.problem or err.context or "syntax error"
        raise ConfigError(file, where, f"invalid YAML: {problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(file, "(document)", f"invalid YAML: {err}") from err


def kind(value: Any) -> str:
    """YAML-ish name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, Sequence):
        return "list"
    return type(value).__name__


def show(value: Any) -> str:
    """Type and (short) value, e.g. ``string 'fast'``."""
    text = repr(value)
    return f"{kind(value)} {text[:40] + '...' if len(text) > 40 else text}"


class Section:
    """One mapping of the config with typed, range-checked getters; `None` values mean "default"."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        self.file, self.path = file, path
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(file, path or "(document)", f"expected a mapping, got {show(data)}")
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(file, self.key(str(key)), f"keys must be strings, got {kind(key)}")
        self.data: Mapping[str, Any] = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem)

    def allow(self, *allowed: str) -> None:
        """Reject keys outside `allowed`, suggesting the closest one."""
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                raise self.error(key, f"unknown key ({hint})")

    def get(self, name: str, required: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and required:
            raise self.error(name, "required key is missing")
        return value

    def section(self, name: str) -> Section:
        return Section(self.file, self.key(name), self.data.get(name))

    def str_(self, name: str, default: str, required: bool = False) -> str:
        value = self.get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {show(value)}")
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.get(name)
        if value is not None and not isinstance(value, str):
            raise self.error(name, f"expected a string or null, got {show(value)}")
        return value

    def int_(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {show(value)}")
        if not lo <= value <= hi:
            raise self.error(name, f"must be between {lo} and {hi}, got {value}")
        return value

    def float_(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"expected a number, got {show(value)}")
        if not lo <= value <= hi:  # also rejects NaN
            raise self.error(name, f"must be between {lo:g} and {hi:g}, got {value}")
        return float(value)

    def bool_(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {show(value)}")
        return value

    def choice(self, name: str, choices: Iterable[str], default: str, lower: bool = False) -> str:
        options = tuple(choices)
        value = self.str_(name, default)
        if lower:
            value = value.lower()
        if value not in options:
            raise self.error(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value
