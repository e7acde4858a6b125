"""Baselines: the accepted set of findings, kept in a file beside the code.

The baseline lives in the repository (``.secperf-baseline.json``) so that CI on
a fresh clone compares against the same set as a developer's machine, as
detect-secrets' ``.secrets.baseline`` does. It holds fingerprints (which are
line-independent) with a little context for people reading it — never a
secret's value. It also holds the salt and the scrypt parameters secret
fingerprints are derived with (``secret_kdf``), so that they agree across
machines. Version 1 baselines (secret fingerprints made from previews) are
still read: their other fingerprints keep matching, and a notice says that
their secret fingerprints match again once ``secperf baseline update`` has
rewritten the file.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secperf.model import Finding
from secperf.security.cache import mark_state_dir
from secperf.security.redaction import DEFAULT_SECRET_KDF, SecretKdf, secret_kdf_from_json

BASELINE_FILE = ".secperf-baseline.json"
LOCAL_SALT_FILE = Path(".secperf") / "salt"
FORMAT_VERSION = 2
#: Version 1: no ``secret_kdf``; secret fingerprints came from an HMAC of the preview.
_READABLE_VERSIONS = (1, FORMAT_VERSION)


class BaselineError(ValueError):
    """The baseline file cannot be read; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """Accepted fingerprints with context, and the project's secret-hashing salt."""

    fingerprints: Mapping[str, Mapping[str, Any]]
    salt: str | None = None
    created_ms: int = 0
    secret_kdf: SecretKdf = DEFAULT_SECRET_KDF
    #: Something a user should know about this file (an old format), or None.
    notice: str | None = None

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.fingerprints


@dataclass(slots=True)
class Comparison:
    """A scan's findings against the baseline."""

    new: list[Finding] = field(default_factory=list)
    existing: list[Finding] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # baseline fingerprints not seen any more


def load_baseline(path: Path) -> Baseline | None:
    """The baseline at ``path``, None when there is none; BaselineError when malformed."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BaselineError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: expected a JSON object at the top level")
    version = data.get("version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise BaselineError(f"{path}: version: expected {FORMAT_VERSION}, got {version!r}")
    findings = data.get("findings", {})
    if not isinstance(findings, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in findings.items()
    ):
        raise BaselineError(f"{path}: findings: expected an object of fingerprint -> details")
    salt = data.get("salt")
    if salt is not None and not isinstance(salt, str):
        raise BaselineError(f"{path}: salt: expected a string")
    created = data.get("created_ms", 0)
    kdf = DEFAULT_SECRET_KDF
    notice = None
    if version == FORMAT_VERSION:
        try:
            kdf = secret_kdf_from_json(data.get("secret_kdf"))
        except ValueError as exc:
            raise BaselineError(f"{path}: secret_kdf: {exc}") from None
    elif any(v.get("scanner") == "secrets" for v in findings.values()):
        notice = (
            f"{path} is a version 1 baseline: its secret fingerprints were made the old way"
            " and no longer match, so accepted secrets show as new; run"
            " `secperf baseline update` to rewrite it with scrypt fingerprints"
        )
    return Baseline(findings, salt, created if isinstance(created, int) else 0, kdf, notice)


def baseline_from_findings(
    findings: Iterable[Finding],
    salt: str,
    created_ms: int,
    secret_kdf: SecretKdf = DEFAULT_SECRET_KDF,
) -> Baseline:
    """A baseline accepting ``findings`` (whose secret fingerprints used ``secret_kdf``)."""
    return Baseline(
        {
            f.fingerprint: {
                "rule_id": f.rule_id,
                "scanner": f.scanner,
                "severity": f.severity.value,
                "path": f.path,
            }
            for f in findings
        },
        salt,
        created_ms,
        secret_kdf,
    )


def save_baseline(path: Path, baseline: Baseline) -> None:
    """Write the baseline atomically, sorted so that diffs stay small."""
    body = {
        "version": FORMAT_VERSION,
        "created_ms": baseline.created_ms,
        "salt": baseline.salt,
        "secret_kdf": baseline.secret_kdf.as_json(),
        "findings": {fp: dict(baseline.fingerprints[fp]) for fp in sorted(baseline.fingerprints)},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def compare(findings: Iterable[Finding], baseline: Baseline | None) -> Comparison:
    """Split findings into new and existing; list baseline entries now fixed."""
    result = Comparison()
    seen: set[str] = set()
    for finding in findings:
        seen.add(finding.fingerprint)
        if baseline is not None and finding.fingerprint in baseline:
            result.existing.append(finding)
        else:
            result.new.append(finding)
    if baseline is not None:
        result.fixed = sorted(fp for fp in baseline.fingerprints if fp not in seen)
    return result


def project_salt(project_dir: Path, baseline: Baseline | None) -> bytes:
    """The salt for hashing secrets: the baseline's, else a local one made once."""
    if baseline is not None and baseline.salt:
        return bytes.fromhex(baseline.salt)
    local = project_dir / LOCAL_SALT_FILE
    try:
        return bytes.fromhex(local.read_text().strip())
    except (OSError, ValueError):
        pass
    mark_state_dir(local.parent)
    salt = secrets.token_hex(16)
    local.write_text(salt + "\n")
    return bytes.fromhex(salt)


def project_secret_kdf(baseline: Baseline | None) -> SecretKdf:
    """The scrypt parameters for secret fingerprints: the baseline's, else the default."""
    return baseline.secret_kdf if baseline is not None else DEFAULT_SECRET_KDF
