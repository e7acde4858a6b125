"""Read SARIF 2.1.0 logs from any tool (gitleaks, Trivy, CodeQL, Semgrep ...) as findings.

Severity, as GitHub code scanning decides it: a numeric ``security-severity``
property (on the result or its rule) wins: >= 9 critical, >= 7 high, >= 4
medium, > 0 low; otherwise the SARIF level (the result's, else the rule's
``defaultConfiguration.level``, else ``warning``): error -> high,
warning -> medium, note -> low, none -> info.

Every message and snippet goes through secperf's one redactor
(``secperf.security.redaction.redact_text``) before it is fingerprinted or
kept, as the scanners' own do. Results of secret scanners and of rules about
secrets keep no snippet at all, their messages are redacted strictly (quoted
strings and long token-like words too), and their partial fingerprints that
may hash the matched text are dropped.

Results with ``kind`` pass or notApplicable, and results carrying an accepted
suppression, are not findings and are left out. A result whose location makes
no sense is left out too, and listed with the field at fault
(``runs[0].results[3].locations[0].physicalLocation.region.startLine: -5 is
not a line number``): a path outside the project root (``../`` climbing out,
an absolute path or ``file:`` URI elsewhere, a URI of another scheme), a line
or column below 1, an end line before the start line. The other results of the
log are kept.

One idea, kept whole though it runs past 600 lines: reading one SARIF log
into findings (locations and their checks, severity, fingerprints, redaction)
follows one document's structure.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secperf.model import Finding, Severity
from secperf.security.osv import severity_from_score
from secperf.security.redaction import redact_text, scrub_finding
from secperf.security.scanners.interface import FingerprintCounter

SCANNER_ID = "sarif"
SNIPPET_LIMIT = 1000

_LEVEL_SEVERITY = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.INFO,
}
_PRECISION_CONFIDENCE = {"very-high": "high", "high": "high", "medium": "medium", "low": "low"}
_CWE = re.compile(r"cwe[-_/: ]?0*(\d+)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(\d+)\}")

#: Tools whose every result is a secret.
SECRET_TOOLS = frozenset(
    {
        "gitleaks",
        "trufflehog",
        "detect-secrets",
        "ggshield",
        "talisman",
        "secretlint",
        "noseyparker",
    }
)
_SECRET_RULE = re.compile(
    r"secret|passw|pwd|token|api[-_ ]?key|private[-_ ]?key|credential|access[-_ ]?key",
    re.IGNORECASE,
)
#: Partial fingerprints of a secret's result that may be hashes of the matched text.
_MATCH_HASH_KEY = re.compile(r"hash|secret|match|value|line|fingerprint", re.IGNORECASE)
#: Longest piece of a rejected URI quoted in a skip reason.
_URI_SHOWN = 200


class SarifError(ValueError):
    """A SARIF log that does not have the shape SARIF 2.1.0 requires, with the JSON path."""

    def __init__(self, json_path: str, problem: str) -> None:
        super().__init__(f"{json_path}: {problem}" if json_path else problem)
        self.json_path = json_path


def is_secret_scanner_rule(tool: str, tags: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether the result comes from a secret scanner (by tool name or a "secret" tag)."""
    if tool.lower() in SECRET_TOOLS:
        return True
    return any(tag.lower() in ("secret", "secrets") for tag in tags)


def is_secret_rule(
    tool: str, rule_id: str, tags: list[str] | tuple[str, ...] = (), name: str | None = None
) -> bool:
    """Whether a rule may match a secret's value, so its matched text must never be kept.

    Deliberately broad (any rule id or name mentioning passwords, tokens, keys or
    credentials): losing a snippet costs little, keeping a secret costs a lot.
    """
    if is_secret_scanner_rule(tool, tags):
        return True
    return bool(_SECRET_RULE.search(rule_id) or (name and _SECRET_RULE.search(name)))


@dataclass(frozen=True, slots=True)
class SarifImport:
    """What one SARIF log gave: its findings, and each result left out with why.

    ``skipped`` holds one ``json.path.of.field: problem`` line per result left out;
    ``checked`` counts the results read whole (findings, and the results that are
    not findings by design: passes, accepted suppressions), so a log with some
    skipped results can be told from one whose every result was skipped.
    """

    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    checked: int = 0


class _ResultSkipped(Exception):
    """One result cannot be imported as it is; the rest of the log can."""

    def __init__(self, json_path: str, problem: str) -> None:
        super().__init__(f"{json_path}: {problem}")


# ----------------------------------------------------------------- shape checks


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SarifError(where, f"expected an object, got {_kind(value)}")
    return value


def _arr(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SarifError(where, f"expected an array, got {_kind(value)}")
    return value


def _opt_obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    return {} if parent.get(key) is None else _obj(parent[key], f"{where}.{key}")


def _opt_arr(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    return [] if parent.get(key) is None else _arr(parent[key], f"{where}.{key}")


def _opt_str(parent: dict[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, str):
        raise SarifError(f"{where}.{key}", f"expected a string, got {_kind(value)}")
    return value


def _opt_int(parent: dict[str, Any], key: str, where: str) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SarifError(f"{where}.{key}", f"expected an integer, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


# ----------------------------------------------------------------- parsing


@dataclass(slots=True)
class _Rule:
    id: str
    default_level: str | None
    security_severity: float | None
    tags: list[str]
    help_uri: str | None
    precision: str | None
    message_strings: dict[str, str]
    name: str | None


def _parse_rule(raw: Any, where: str) -> _Rule:
    rule = _obj(raw, where)
    rule_id = _opt_str(rule, "id", where)
    if rule_id is None:
        raise SarifError(f"{where}.id", "a rule needs an id")
    config = _opt_obj(rule, "defaultConfiguration", where)
    props = _opt_obj(rule, "properties", where)
    tags = [t for t in _opt_arr(props, "tags", f"{where}.properties") if isinstance(t, str)]
    strings: dict[str, str] = {}
    for key, value in _opt_obj(rule, "messageStrings", where).items():
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            strings[key] = value["text"]
    precision = props.get("precision")
    return _Rule(
        id=rule_id,
        default_level=_opt_str(config, "level", f"{where}.defaultConfiguration"),
        security_severity=_number(props.get("security-severity")),
        tags=tags,
        help_uri=_opt_str(rule, "helpUri", where),
        precision=precision if isinstance(precision, str) else None,
        message_strings=strings,
        name=_opt_str(rule, "name", where),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fill(template: str, arguments: list[Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return str(arguments[index]) if index < len(arguments) else match.group(0)

    return _PLACEHOLDER.sub(replace, template)


def _uri_to_path(uri: str) -> str | None:
    """The local path of a file: URI, or None for other schemes."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "file":
        return None
    # Loaded here: urllib.request brings HTTP, which a scan never needs otherwise.
    from urllib.request import url2pathname

    return url2pathname(parsed.path)


def _shown(uri: str) -> str:
    return repr(uri if len(uri) <= _URI_SHOWN else uri[:_URI_SHOWN] + "...")


def _resolve_path(uri: str, base_id: str | None, bases: dict[str, str], root: Path | None) -> str:
    """A finding path relative to the scan root, POSIX style.

    Raises ValueError saying why when the URI names nothing inside the project:
    it climbs out with ``..``, is absolute (a path or ``file:`` URI) outside the
    root, or has another scheme. Without a root (an upload), the log's own
    ``file:`` base URIs stand for the project root.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in uri):
        raise ValueError(f"{_shown(uri)} holds control characters")
    scheme = urllib.parse.urlparse(uri).scheme
    # One letter is a Windows drive (C:/...), not a scheme: an absolute path.
    if scheme and scheme != "file" and len(scheme) > 1:
        raise ValueError(f"{_shown(uri)} is a {scheme}: URI, not a file in the project")
    roots = [root] if root is not None else _base_roots(bases)
    absolute = _uri_to_path(uri)
    if absolute is None:
        relative = urllib.parse.unquote(uri).replace("\\", "/")
        if len(scheme) == 1 or relative.startswith("/"):
            absolute = relative
        elif base_id and base_id in bases:
            base_path = _uri_to_path(bases[base_id])
            if base_path is not None and root is not None:
                joined = Path(base_path) / relative
                if _under(joined, root):
                    return _relative(joined, root)
    if absolute is not None:
        for candidate in roots:
            if _under(Path(absolute), candidate):
                return _relative(Path(absolute), candidate)
        if not roots:
            raise ValueError(f"{_shown(uri)} is an absolute path and no project root is known")
        raise ValueError(f"{_shown(uri)} is outside the project root")
    # Relative to the root (or to a base elsewhere, as Trivy's file:/// is).
    cleaned = posixpath.normpath(relative) if relative else ""
    if cleaned == ".." or cleaned.startswith("../"):
        raise ValueError(f"{_shown(uri)} is outside the project root")
    return "" if cleaned == "." else cleaned


def _base_roots(bases: dict[str, str]) -> list[Path]:
    """The ``file:`` base URIs of a run, which stand for its root when none is given."""
    found = [_uri_to_path(value) for value in bases.values()]
    # file:/// (Trivy's ROOTPATH) is the whole disk, not a project.
    return [Path(path) for path in found if path is not None and path not in ("", "/")]


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def read_sarif(data: Any, root: Path | None = None, source: str = "") -> SarifImport:
    """A parsed SARIF 2.1.0 log's findings and skipped results.

    Raises SarifError with the JSON path at fault when the log itself is
    malformed; a single result that makes no sense is skipped and listed.
    ``root`` is the project root paths must stay in (``file:`` URIs under it are
    made relative to it); ``source`` the SARIF file's own path, kept in each
    finding's properties.
    """
    log = _obj(data, "$")
    version = log.get("version")
    if version != "2.1.0":
        raise SarifError("version", f"expected SARIF version '2.1.0', got {version!r}")
    runs = _arr(log.get("runs"), "runs")
    findings: list[Finding] = []
    skipped: list[str] = []
    checked = 0
    counters: dict[str, FingerprintCounter] = {}
    for run_index, raw_run in enumerate(runs):
        checked += _parse_run(
            raw_run, f"runs[{run_index}]", root, source, counters, findings, skipped
        )
    return SarifImport(findings, skipped, checked)


def parse_sarif(data: Any, root: Path | None = None, source: str = "") -> list[Finding]:
    """The findings of ``read_sarif`` (skipped results left out)."""
    return read_sarif(data, root, source).findings


def _parse_run(
    raw_run: Any,
    where: str,
    root: Path | None,
    source: str,
    counters: dict[str, FingerprintCounter],
    out_findings: list[Finding],
    out_skipped: list[str],
) -> int:
    """Add the run's findings and skipped results to ``out_*``; the results read whole."""
    run = _obj(raw_run, where)
    tool_obj = _obj(run.get("tool"), f"{where}.tool")
    driver = _obj(tool_obj.get("driver"), f"{where}.tool.driver")
    tool_name = _opt_str(driver, "name", f"{where}.tool.driver")
    if not tool_name:
        raise SarifError(f"{where}.tool.driver.name", "the tool needs a name")
    # "Semgrep OSS" -> "semgrep-oss": the tool name prefixes rule ids, so keep it one word.
    tool = "-".join(tool_name.lower().split())
    tool_version = _opt_str(driver, "semanticVersion", f"{where}.tool.driver") or _opt_str(
        driver, "version", f"{where}.tool.driver"
    )
    components: list[list[_Rule]] = [
        [
            _parse_rule(r, f"{where}.tool.driver.rules[{i}]")
            for i, r in enumerate(_opt_arr(driver, "rules", f"{where}.tool.driver"))
        ]
    ]
    for e_index, ext in enumerate(_opt_arr(tool_obj, "extensions", f"{where}.tool")):
        e_where = f"{where}.tool.extensions[{e_index}]"
        ext_obj = _obj(ext, e_where)
        components.append(
            [
                _parse_rule(r, f"{e_where}.rules[{i}]")
                for i, r in enumerate(_opt_arr(ext_obj, "rules", e_where))
            ]
        )
    by_id = {rule.id: rule for group in components for rule in group}

    bases: dict[str, str] = {}
    for key, value in _opt_obj(run, "originalUriBaseIds", where).items():
        if isinstance(value, dict) and isinstance(value.get("uri"), str):
            bases[key] = value["uri"]
    artifacts = _opt_arr(run, "artifacts", where)

    findings: list[Finding] = []
    checked = 0
    for r_index, raw_result in enumerate(_opt_arr(run, "results", where)):
        r_where = f"{where}.results[{r_index}]"
        try:
            finding = _parse_result(
                raw_result, r_where, tool, tool_version, components, by_id, bases, artifacts, root
            )
        except _ResultSkipped as skip:
            # The reason quotes the log (a URI), which may carry credentials.
            out_skipped.append(redact_text(str(skip)))
            continue
        checked += 1
        if finding is not None:
            findings.append(finding)

    # Fingerprints are counted in position order so that identical matches keep their index.
    findings.sort(key=lambda f: (f.path, f.line, f.column or 0, f.rule_id))
    for finding in findings:
        # A result without a location is attached to the SARIF file itself.
        path = finding.path or source
        counter = counters.setdefault(path, FingerprintCounter())
        code = finding.properties.pop("_fingerprint_code")
        # Message and snippet are redacted already; the rest of the free text
        # (rule names, tags, help URI, partial fingerprints) is checked here.
        out_findings.append(
            scrub_finding(
                _replace(
                    finding,
                    fingerprint=counter.fingerprint(finding.rule_id, path, code),
                    path=path,
                    source=source,
                )
            )
        )
    return checked


def _replace(finding: Finding, fingerprint: str, path: str, source: str) -> Finding:
    properties = dict(finding.properties)
    if source:
        properties["sarif_file"] = source
    return Finding(
        fingerprint=fingerprint,
        rule_id=finding.rule_id,
        scanner=finding.scanner,
        severity=finding.severity,
        message=finding.message,
        path=path,
        line=finding.line,
        end_line=finding.end_line,
        column=finding.column,
        category=finding.category,
        confidence=finding.confidence,
        cwe=finding.cwe,
        snippet=finding.snippet,
        help_url=finding.help_url,
        properties=properties,
    )


def _parse_result(
    raw: Any,
    where: str,
    tool: str,
    tool_version: str | None,
    components: list[list[_Rule]],
    by_id: dict[str, _Rule],
    bases: dict[str, str],
    artifacts: list[Any],
    root: Path | None,
) -> Finding | None:
    result = _obj(raw, where)
    kind = _opt_str(result, "kind", where) or "fail"
    if kind in ("pass", "notApplicable"):
        return None
    for s_index, suppression in enumerate(_opt_arr(result, "suppressions", where)):
        status = _obj(suppression, f"{where}.suppressions[{s_index}]").get("status", "accepted")
        if status == "accepted":
            return None

    rule: _Rule | None = None
    rule_id = _opt_str(result, "ruleId", where)
    rule_index = _opt_int(result, "ruleIndex", where)
    reference = _opt_obj(result, "rule", where)
    if reference:
        rule_id = rule_id or _opt_str(reference, "id", f"{where}.rule")
        if rule_index is None:
            rule_index = _opt_int(reference, "index", f"{where}.rule")
    component = 0
    tool_component = _opt_obj(reference, "toolComponent", f"{where}.rule")
    if tool_component:
        ext_index = _opt_int(tool_component, "index", f"{where}.rule.toolComponent")
        component = ext_index + 1 if ext_index is not None else 0
    if rule_index is not None:
        rules = components[component] if component < len(components) else []
        if not 0 <= rule_index < len(rules):
            raise SarifError(f"{where}.ruleIndex", f"rule index {rule_index} is out of range")
        rule = rules[rule_index]
        rule_id = rule_id or rule.id
    elif rule_id is not None:
        rule = by_id.get(rule_id) or by_id.get(rule_id.split("/")[0])
    if not rule_id:
        rule_id = "unknown"

    tags = list(rule.tags) if rule else []
    result_props = _opt_obj(result, "properties", where)
    tags += (
        [t for t in result_props.get("tags", []) if isinstance(t, str)]
        if isinstance(result_props.get("tags"), list)
        else []
    )
    secret = is_secret_rule(tool, rule_id, tags, rule.name if rule else None)

    message_obj = _obj(result.get("message"), f"{where}.message")
    arguments = _opt_arr(message_obj, "arguments", f"{where}.message")
    text = _opt_str(message_obj, "text", f"{where}.message")
    message_id = _opt_str(message_obj, "id", f"{where}.message")
    if text is None and message_id and rule and message_id in rule.message_strings:
        text = rule.message_strings[message_id]
    if text is None:
        raise SarifError(f"{where}.message", "a result message needs 'text' (or a known 'id')")
    message = redact_text(_fill(text, arguments), strict=secret)

    level = _opt_str(result, "level", where) or (rule.default_level if rule else None) or "warning"
    if level not in _LEVEL_SEVERITY:
        raise SarifError(f"{where}.level", f"unknown level {level!r}")
    score = _number(result_props.get("security-severity"))
    if score is None and rule is not None:
        score = rule.security_severity
    severity = (
        # GitHub reads ``security-severity`` with the CVSS bands.
        severity_from_score(score) if score is not None else _LEVEL_SEVERITY[level]
    )

    path, line, end_line, column, snippet = "", 0, None, None, None
    locations = _opt_arr(result, "locations", where)
    if locations:
        l_where = f"{where}.locations[0]"
        location = _obj(locations[0], l_where)
        physical = _opt_obj(location, "physicalLocation", l_where)
        p_where = f"{l_where}.physicalLocation"
        artifact = _opt_obj(physical, "artifactLocation", p_where)
        a_where = f"{p_where}.artifactLocation"
        uri = _opt_str(artifact, "uri", a_where)
        uri_where = f"{a_where}.uri"
        base_id = _opt_str(artifact, "uriBaseId", a_where)
        artifact_index = _opt_int(artifact, "index", a_where)
        if uri is None and artifact_index is not None:
            if not 0 <= artifact_index < len(artifacts):
                raise SarifError(
                    f"{a_where}.index", f"artifact index {artifact_index} is out of range"
                )
            listed = artifacts[artifact_index]
            listed_location = listed.get("location") if isinstance(listed, dict) else None
            if isinstance(listed_location, dict):
                uri = (
                    listed_location.get("uri")
                    if isinstance(listed_location.get("uri"), str)
                    else None
                )
                uri_where = f"{where.rsplit('.results[', 1)[0]}.artifacts[{artifact_index}]"
                uri_where += ".location.uri"
                base_id = base_id or listed_location.get("uriBaseId")
        if uri:
            try:
                path = _resolve_path(
                    uri, base_id if isinstance(base_id, str) else None, bases, root
                )
            except ValueError as exc:
                raise _ResultSkipped(uri_where, str(exc)) from None
        region = _opt_obj(physical, "region", p_where)
        r_where = f"{p_where}.region"
        line = _positive(region, "startLine", r_where, "line") or 0
        end_line = _positive(region, "endLine", r_where, "line")
        if end_line is not None and line and end_line < line:
            raise _ResultSkipped(f"{r_where}.endLine", f"{end_line} is before startLine {line}")
        column = _positive(region, "startColumn", r_where, "column")
        _positive(region, "endColumn", r_where, "column")
        snippet_obj = _opt_obj(region, "snippet", r_where)
        snippet = _opt_str(snippet_obj, "text", f"{r_where}.snippet")
    if secret or (snippet is not None and not snippet.strip()):
        snippet = None
    if snippet is not None:
        # Cut after redaction: a secret cut in half is no longer recognised.
        snippet = redact_text(snippet, filename=path)[:SNIPPET_LIMIT]

    cwe: int | None = None
    for tag in tags:
        match = _CWE.search(tag)
        if match:
            cwe = int(match.group(1))
            break
    partial = result.get("partialFingerprints")
    properties: dict[str, Any] = {
        "tool": tool,
        "tool_version": tool_version,
        "original_rule_id": rule_id,
        "level": level,
        "_fingerprint_code": snippet if snippet is not None else message,
    }
    if score is not None:
        properties["security_severity"] = score
    if isinstance(partial, dict):
        # A secret tool's hash of what it matched is a fast hash of the secret.
        properties["partial_fingerprints"] = {
            k: v
            for k, v in partial.items()
            if isinstance(k, str)
            and isinstance(v, str)
            and not (secret and _MATCH_HASH_KEY.search(k))
        }
    if tags:
        properties["tags"] = tags
    if rule is not None and rule.name:
        properties["rule_name"] = rule.name
    if len(locations) > 1:
        properties["extra_locations"] = len(locations) - 1
    return Finding(
        fingerprint="",
        rule_id=f"{tool}/{rule_id}",
        scanner=SCANNER_ID,
        severity=severity,
        message=message,
        path=path,
        line=line,
        end_line=end_line,
        column=column,
        category="secret" if is_secret_scanner_rule(tool, tags) else "imported",
        confidence=_PRECISION_CONFIDENCE.get((rule.precision or "").lower()) if rule else None,
        cwe=cwe,
        snippet=snippet,
        help_url=rule.help_uri if rule else None,
        properties=properties,
    )


def _positive(region: dict[str, Any], key: str, where: str, what: str) -> int | None:
    """A region's line or column number, which SARIF counts from 1."""
    value = _opt_int(region, key, where)
    if value is not None and value < 1:
        raise _ResultSkipped(f"{where}.{key}", f"{value} is not a {what} number")
    return value


def import_sarif(content: bytes, root: Path | None = None, source: str = "") -> SarifImport:
    """``read_sarif`` on SARIF bytes; raises SarifError for invalid JSON or a malformed log."""
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SarifError("", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise SarifError(
            "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return read_sarif(data, root, source)


def load_sarif(content: bytes, root: Path | None = None, source: str = "") -> list[Finding]:
    """The findings of ``import_sarif`` (skipped results left out)."""
    return import_sarif(content, root, source).findings
