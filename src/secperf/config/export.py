"""The config written back as a user would write it: plain data in user units, and TOML."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from secperf.config.fields import Expect, unwrap_annotation
from secperf.config.units import MASK
from secperf.model import Severity


def export_config(model: BaseModel) -> dict[str, Any]:
    """The config as plain TOML-ready data, in the units a user writes.

    Durations come back as ``"15s"``, sizes as ``"1MiB"``; the token and any
    password in a URL are masked. Unset optional keys are left out.
    """
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        out[info.alias or name] = _export_value(value, info.annotation, list(info.metadata))
    return out


def _export_value(value: Any, annotation: Any, metadata: list[Any]) -> Any:
    core, inner = unwrap_annotation(annotation)
    for item in [*metadata, *inner]:
        if isinstance(item, Expect) and item.export is not None:
            return item.export(value)
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return export_config(value)
    if isinstance(value, list):
        item_type = typing.get_args(core)[0] if typing.get_args(core) else Any
        return [_export_value(v, item_type, []) for v in value]
    if isinstance(value, dict):
        args = typing.get_args(core)
        value_type = args[1] if len(args) == 2 else Any
        return {k: _export_value(v, value_type, []) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Severity):
        return value.value
    return value


def to_toml(data: Mapping[str, Any]) -> str:
    """Render exported config data as TOML that ``load_config`` reads back."""
    lines: list[str] = []
    _emit_table(lines, data, [], array_item=False)
    return "\n".join(lines).strip() + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _emit_table(
    lines: list[str], table: Mapping[str, Any], path: list[str], *, array_item: bool
) -> None:
    name = ".".join(_toml_key(p) for p in path)
    if path:
        lines.append("")
        lines.append(f"[[{name}]]" if array_item else f"[{name}]")
    nested: list[tuple[str, Any]] = []
    for key, value in table.items():
        is_table = isinstance(value, dict) and value
        is_array_of_tables = (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        )
        if is_table or is_array_of_tables:
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in nested:
        if isinstance(value, dict):
            _emit_table(lines, value, [*path, key], array_item=False)
        else:
            for item in value:
                _emit_table(lines, item, [*path, key], array_item=True)
