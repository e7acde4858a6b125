"""Finding, reading and validating the config: ``secperf.toml`` or ``[tool.secperf]`` in
``pyproject.toml`` of the project directory, or an explicit file; ``LoadedConfig`` keeps
where it came from and the root that relative paths resolve against.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from secperf.config.checks import checks_despite, cross_checks, resolve_token
from secperf.config.errors import ConfigError, describe_errors, show_value
from secperf.config.schema import Config

CONFIG_FILE_NAME = "secperf.toml"
PYPROJECT_FILE_NAME = "pyproject.toml"
PYPROJECT_PREFIX = "tool.secperf."


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config with where it came from.

    ``source`` is None when no file was found (defaults); ``root`` is the
    directory relative paths were resolved against; ``token_source`` says where
    the server token came from ("file", "env:NAME") or None when there is none.
    """

    config: Config
    source: Path | None
    root: Path
    token_source: str | None = None

    @property
    def key_prefix(self) -> str:
        """How keys are written in the source file (``tool.secperf.`` in pyproject)."""
        return PYPROJECT_PREFIX if self.source and self.source.name == PYPROJECT_FILE_NAME else ""


def load_config(path: Path | None = None, project_dir: Path | None = None) -> LoadedConfig:
    """Find, read and validate the configuration; raises ``ConfigError`` naming each problem.

    ``path`` is an explicit file (``secperf.toml`` or a ``pyproject.toml`` with a
    ``[tool.secperf]`` table). Without it, ``project_dir`` (default: the current
    directory) is searched for ``secperf.toml``, then ``pyproject.toml``.
    Relative paths in the file resolve against ``project_dir`` when given, else
    the file's directory.
    """
    base = (project_dir or Path.cwd()).resolve()
    prefix = ""
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None:
        source = path
        document = _read_toml(path)
        if path.name == PYPROJECT_FILE_NAME:
            prefix = PYPROJECT_PREFIX
            section = _pyproject_section(path, document)
            if section is None:
                raise ConfigError(
                    [f"{_show_path(path)}: no [tool.secperf] table; add one or use secperf.toml"],
                    path,
                )
            data = section
        else:
            data = document
        root = base if project_dir is not None else path.resolve().parent
    else:
        root = base
        candidate = base / CONFIG_FILE_NAME
        pyproject = base / PYPROJECT_FILE_NAME
        if candidate.is_file():
            source = candidate
            data = _read_toml(candidate)
        elif pyproject.is_file():
            section = _pyproject_section(pyproject, _read_toml(pyproject))
            if section is not None:
                source, data, prefix = pyproject, section, PYPROJECT_PREFIX
    label = _show_path(source) if source is not None else "defaults"

    try:
        config = Config.model_validate(data, context={"root": root})
    except ValidationError as exc:
        problems = [f"{label}: {line}" for line in describe_errors(exc, data, prefix)]
        # The token and cross-key checks still run on what did parse, so that
        # every problem is reported at once, not one round of fixes at a time.
        problems += [
            f"{label}: {prefix}{key}: {message}"
            for key, message in checks_despite(exc, data, root, prefix)
        ]
        raise ConfigError(problems, source) from None

    config, token_source, token_problems = resolve_token(config, prefix)
    problems = [
        f"{label}: {prefix}{key}: {message}"
        for key, message in [*token_problems, *cross_checks(config, prefix)]
    ]
    if problems:
        raise ConfigError(problems, source)
    return LoadedConfig(config=config, source=source, root=root, token_source=token_source)


def _show_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_toml(path: Path) -> dict[str, Any]:
    shown = _show_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{shown}: no such file"], path) from None
    except IsADirectoryError:
        raise ConfigError([f"{shown}: is a directory, not a TOML file"], path) from None
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read: {exc.strerror or exc}"], path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{shown}: not valid UTF-8 (byte {exc.start}); TOML files must be UTF-8"], path
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if where:
            reason = message[: where.start()] + message[where.end() :]
            message = f"line {where.group(1)}, column {where.group(2)}: {reason.strip()}"
        elif "(at end of document)" in message:
            reason = message.replace("(at end of document)", "").strip()
            message = f"at the end of the file: {reason}"
        raise ConfigError([f"{shown}: invalid TOML: {message}"], path) from None


def _pyproject_section(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    tool = document.get("tool")
    if not isinstance(tool, dict) or "secperf" not in tool:
        return None
    section = tool["secperf"]
    if not isinstance(section, dict):
        raise ConfigError(
            [
                f"{_show_path(path)}: tool.secperf: expected a table [tool.secperf], "
                f"got {show_value(section)}"
            ],
            path,
        )
    return section
