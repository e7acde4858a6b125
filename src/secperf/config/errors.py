"""What is wrong with a config, in words: ``ConfigError`` and the text of each problem,
which names the file, the dotted key, what is allowed there and what was found.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from secperf.config.fields import Expect, unwrap_annotation
from secperf.config.schema import Config
from secperf.config.units import mask_url


class ConfigError(Exception):
    """A configuration that cannot be used; ``str(error)`` is the full message.

    ``problems`` holds one line per wrong key, each naming the file and the key.
    """

    def __init__(self, problems: Sequence[str], source: Path | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        super().__init__("\n".join(self.problems))


def show_value(value: Any) -> str:
    """A TOML-flavoured rendering of a bad value, kept short.

    A URL-like string (anything with ``://``), alone or in a list, is shown as
    ``mask_url`` shows it: a refused URL still carries its password and tokens.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    else:
        text = repr(_masked(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _masked(value: Any) -> Any:
    """``value`` with every URL-like string in it masked (see ``show_value``)."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_masked(item) for item in value)
    return value


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _bounds_text(metadata: Sequence[Any], noun: str) -> str:
    low = high = None
    low_op = high_op = ""
    for item in metadata:
        for attr, op in (("ge", ">="), ("gt", ">")):
            if getattr(item, attr, None) is not None:
                low, low_op = getattr(item, attr), op
        for attr, op in (("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                high, high_op = getattr(item, attr), op
    if low is not None and high is not None and low_op == ">=" and high_op == "<=":
        return f"{noun} from {low} to {high}"
    text = noun
    if low is not None:
        text += f" {low_op} {low}"
    if high is not None:
        text += f"{' and' if low is not None else ''} {high_op} {high}"
    return text


def _describe_type(annotation: Any, metadata: Sequence[Any], key: str) -> str:
    """What a value of this type looks like, in words a TOML user understands."""
    core, inner = unwrap_annotation(annotation)
    metadata = [*metadata, *inner]
    for item in metadata:
        if isinstance(item, Expect):
            return item.text
    if core is bool:
        return "true or false"
    if core is int:
        return _bounds_text(metadata, "an integer")
    if core is float:
        return _bounds_text(metadata, "a number")
    if core is str:
        if any(getattr(item, "min_length", None) for item in metadata):
            return "a non-empty string"
        return "a string"
    if core is SecretStr:
        return "a string"
    if typing.get_origin(core) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(core))
    if _is_model(core):
        return f"a table [{key}]"
    origin = typing.get_origin(core)
    if origin is list:
        (item_type,) = typing.get_args(core)
        item_core, item_metadata = unwrap_annotation(item_type)
        custom = any(isinstance(item, Expect) for item in item_metadata)
        if _is_model(item_core) and not custom:
            return f"an array of tables [[{key}]]"
        noun = (
            "a non-empty list" if any(getattr(m, "min_length", 0) for m in metadata) else "a list"
        )
        return f"{noun}; each item {_describe_type(item_type, [], key)}"
    if origin is dict:
        value_type = typing.get_args(core)[1]
        return f"a table of {_describe_type(value_type, [], key)} values"
    return "a valid value"


@dataclass(slots=True)
class _Located:
    """Where a pydantic error points: display key, the type expected there, context."""

    key: str
    annotation: Any
    metadata: list[Any]
    parent: type[BaseModel] | None  # the model holding the last key
    parent_key: str
    parent_is_array: bool
    known: bool  # whether the last key is a field of its parent
    hint: str  # e.g. "in rule 'high-cpu'"


def _locate(loc: tuple[int | str, ...], data: Any) -> _Located:
    current: Any = Config
    metadata: list[Any] = []
    parts: list[str] = []
    parent: type[BaseModel] | None = Config
    parent_key = ""
    parent_is_array = False
    known = True
    hint = ""
    raw: Any = data
    in_array_item = False
    for index, item in enumerate(loc):
        core, _ = unwrap_annotation(current)
        if _is_model(core) and isinstance(item, str):
            parent, parent_key, parent_is_array = core, ".".join(parts), in_array_item
            in_array_item = False
            parts.append(item)
            raw = raw.get(item) if isinstance(raw, dict) else None
            info = _fields_by_key(core).get(item)
            if info is None:
                known = False
                break
            current, metadata = info.annotation, list(info.metadata)
            continue
        origin = typing.get_origin(core)
        if origin is list and isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
            raw = raw[item] if isinstance(raw, list) and item < len(raw) else None
            current, metadata = typing.get_args(core)[0], []
            item_core, _ = unwrap_annotation(current)
            if _is_model(item_core):
                in_array_item = True
                if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                    hint = (
                        f"in {parts[-1].split('.')[-1].split('[')[0].rstrip('s')} {raw['name']!r}"
                    )
            continue
        if origin is dict and isinstance(item, str):
            parts.append(item)
            raw = raw.get(item) if isinstance(raw, dict) else None
            # pydantic marks a bad key (rather than a bad value) with "[key]" next.
            is_key = index + 1 < len(loc) and loc[index + 1] == "[key]"
            current, metadata = typing.get_args(core)[0 if is_key else 1], []
            if is_key:
                break
            continue
        break  # a union tag or validator name: nothing more to show
    return _Located(
        key=".".join(parts),
        annotation=current,
        metadata=metadata,
        parent=parent,
        parent_key=parent_key,
        parent_is_array=parent_is_array,
        known=known,
        hint=hint,
    )


INDEX_RE = re.compile(r"\[\d+\]")


_TOML_KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "a table",
}


def describe_errors(exc: ValidationError, data: Any, prefix: str) -> list[str]:
    """One line per pydantic error: the key as the user wrote it (with ``prefix``), then
    what is allowed there and what was found."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        where = _locate(tuple(error["loc"]), data)
        key = f"{prefix}{where.key}" if where.key else prefix.rstrip(".") or "(top level)"
        etype = error["type"]
        if etype == "extra_forbidden" or not where.known:
            allowed = ", ".join(_fields_by_key(where.parent)) if where.parent else ""
            if where.parent_key:
                section = prefix + INDEX_RE.sub("", where.parent_key)
                section = f"[[{section}]]" if where.parent_is_array else f"[{section}]"
                text = f"unknown key; allowed keys in {section}: {allowed}"
            elif prefix:
                text = f"unknown key; allowed keys in [{prefix.rstrip('.')}]: {allowed}"
            else:
                text = f"unknown key; allowed top-level keys: {allowed}"
        else:
            expected = _describe_type(where.annotation, where.metadata, f"{prefix}{where.key}")
            if etype == "missing":
                text = f"required key is missing; expected {expected}"
            elif unwrap_annotation(where.annotation)[0] is SecretStr:
                # A wrongly typed token is still the token: never echo it.
                kind = _TOML_KINDS.get(type(error["input"]), "another kind of value")
                text = f"expected {expected}, got {kind} (not shown)"
            else:
                text = f"expected {expected}, got {show_value(error['input'])}"
                detail = _error_detail(error)
                if detail:
                    text += f" ({detail})"
        if where.hint:
            text += f" [{where.hint}]"
        lines.append(f"{key}: {text}")
    return lines


def _error_detail(error: Mapping[str, Any]) -> str:
    """The part of a validator's message that the type description does not already say."""
    if error["type"] != "value_error":
        return ""
    message = str(error.get("msg", ""))
    message = message.removeprefix("Value error, ").strip().rstrip(",")
    if message.startswith("invalid duration") or message.startswith("invalid size"):
        return ""
    return message
