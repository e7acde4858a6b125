"""Custom rules through semgrep, when the ``semgrep`` executable is installed.

One ``semgrep scan`` subprocess per batch, with only the user's local rule
files and ``--metrics=off`` (nothing leaves the machine), JSON output.

Severity: semgrep's ERROR -> high, WARNING -> medium, INFO -> low; the newer
CRITICAL/HIGH/MEDIUM/LOW levels map to themselves; INVENTORY and EXPERIMENT
-> info. Confidence and CWE come from the rule's metadata.

A file semgrep reports an error-level problem for is skipped with its message.
A syntax warning (semgrep parsed what it could and still reports matches in
the rest) is not a skip. Semgrep prefixes rule ids with the rule file's folder
(``rules.no-eval``); findings carry the rule's own id (``no-eval``), so moving
the rule file does not renew every finding.

Memory: semgrep runs outside the scan worker's address-space cap, which it
would inherit and which kills semgrep-core (it reserves far more address space
than it uses). ``scan.worker_memory_limit`` reaches it as semgrep's own
``--max-memory`` (MiB, per file and rule); a file semgrep reports out of memory
is skipped "out of memory (limit N MiB)", as in the other scanners.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secperf.model import Finding, Severity
from secperf.security.redaction import redact_text
from secperf.security.relpath import name_of, suffix_of
from secperf.security.sarif_import import is_secret_rule
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)
from secperf.security.workers import ScanLimits, outside_memory_limit

ADAPTER_VERSION = "3"  # 2: snippets and messages redacted; 3: command-line credentials
# Keeps the command line well below the system's limit.
_FILES_PER_RUN = 500
_SNIPPET_LINES = 5

_SEVERITY = {
    "ERROR": Severity.HIGH,
    "WARNING": Severity.MEDIUM,
    "INFO": Severity.LOW,
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "INVENTORY": Severity.INFO,
    "EXPERIMENT": Severity.INFO,
}

#: File name suffixes per semgrep language; a rule in any other language
#: (generic, regex ...) makes the scanner want every file.
_LANGUAGE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "py": (".py", ".pyi"),
    "python3": (".py", ".pyi"),
    "javascript": (".js", ".jsx", ".mjs", ".cjs"),
    "js": (".js", ".jsx", ".mjs", ".cjs"),
    "typescript": (".ts", ".tsx"),
    "ts": (".ts", ".tsx"),
    "java": (".java",),
    "go": (".go",),
    "golang": (".go",),
    "ruby": (".rb",),
    "php": (".php",),
    "c": (".c", ".h"),
    "cpp": (".cpp", ".cc", ".cxx", ".hpp", ".h"),
    "c++": (".cpp", ".cc", ".cxx", ".hpp", ".h"),
    "csharp": (".cs",),
    "c#": (".cs",),
    "rust": (".rs",),
    "kotlin": (".kt", ".kts"),
    "kt": (".kt", ".kts"),
    "scala": (".scala",),
    "swift": (".swift",),
    "bash": (".sh", ".bash"),
    "sh": (".sh", ".bash"),
    "yaml": (".yml", ".yaml"),
    "json": (".json",),
    "terraform": (".tf", ".hcl"),
    "hcl": (".tf", ".hcl"),
    "html": (".html", ".htm"),
    "lua": (".lua",),
    "solidity": (".sol",),
    "elixir": (".ex", ".exs"),
}
_NAMED_FILES = {"dockerfile": ("Dockerfile",), "docker": ("Dockerfile",)}


class SemgrepScanner(Scanner):
    """Runs the user's local semgrep rule files over the files their languages cover.

    ``executable`` defaults to ``semgrep`` on PATH, else the one installed beside
    the running Python (the same virtualenv). ``memory_limit`` (bytes) is passed
    as semgrep's ``--max-memory``; None: semgrep's own default (no limit).
    """

    id = "semgrep"

    def __init__(
        self,
        rules: Sequence[str] = (),
        executable: str | None = None,
        timeout: float = 300.0,
        memory_limit: int | None = None,
    ) -> None:
        self.rules = [str(Path(r).resolve()) for r in rules]
        self.executable = executable
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._version: str | None = None
        self._rule_info: tuple[list[str], list[str], list[str]] | None = None

    # ------------------------------------------------------------- contract

    def _binary(self) -> str | None:
        if self.executable:
            if Path(self.executable).is_file():
                return self.executable
            # a bare command name ("semgrep", "semgrep-1.185") is looked up on PATH
            return None if "/" in self.executable else shutil.which(self.executable)
        found = shutil.which("semgrep")
        if found is None:
            # Installed into secperf's own virtualenv, which need not be on PATH.
            beside = Path(sys.executable).parent / "semgrep"
            found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
        return found

    def unavailable_reason(self) -> str | None:
        if self._binary() is None:
            if self.executable:
                return f"semgrep executable {self.executable} not found"
            return "semgrep is not installed (pip install semgrep)"
        if not self.rules:
            return "no semgrep rule files configured"
        for rule in self.rules:
            if not Path(rule).is_file():
                return f"semgrep rule file {rule} does not exist"
        try:
            self._rules()
        except ValueError as exc:
            return str(exc)
        return None

    def version(self) -> str:
        if self._version is None:
            binary = self._binary()
            found = "absent"
            if binary is not None:
                try:
                    done = _run_program([binary, "--version", "--disable-version-check"], 60)
                    stdout = done.stdout.decode("utf-8", "replace").strip()
                    found = stdout.splitlines()[-1] if stdout else "unknown"
                except (OSError, subprocess.SubprocessError):
                    found = "unknown"
            self._version = f"{ADAPTER_VERSION}+semgrep{found}"
        return self._version

    def config_hash(self) -> str:
        parts = [self.id]
        for rule in sorted(self.rules):
            try:
                parts += [rule, Path(rule).read_bytes().decode("utf-8", "replace")]
            except OSError as exc:
                parts += [rule, f"unreadable: {exc}"]
        return stable_hash(*parts)

    def applies_to(self, relpath: str) -> bool:
        try:
            _, suffixes, names = self._rules()
        except ValueError:
            return False
        if "*" in suffixes:
            return True
        return suffix_of(relpath).lower() in suffixes or name_of(relpath) in names

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        return self.scan_batch(root, [source])[0]

    def scan_batch(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        results: dict[str, FileResult] = {}
        present: list[SourceFile] = []
        for source in files:
            if (root / source.relpath).is_file():
                present.append(source)
            else:  # semgrep refuses the whole run when one target is missing
                results[source.relpath] = FileResult(
                    source.relpath, skipped="file vanished before semgrep ran"
                )
        reason = self.unavailable_reason()
        for start in range(0, len(present), _FILES_PER_RUN):
            chunk = present[start : start + _FILES_PER_RUN]
            if reason is not None:
                results.update({s.relpath: FileResult(s.relpath, skipped=reason) for s in chunk})
                continue
            began = time.perf_counter()
            chunk_results = self._run(root, chunk)
            share = (time.perf_counter() - began) * 1000 / len(chunk)
            for result in chunk_results:
                result.duration_ms = share
                results[result.relpath] = result
        return [results[source.relpath] for source in files]

    # ------------------------------------------------------------- internals

    def _rules(self) -> tuple[list[str], list[str], list[str]]:
        """(rule ids, wanted suffixes, wanted file names) read from the rule files."""
        if self._rule_info is None:
            # Only rule files need YAML (~40 ms to import): a warm scan never reads them.
            import yaml  # type: ignore[import-untyped]

            ids: list[str] = []
            suffixes: set[str] = set()
            names: set[str] = set()
            for rule_file in self.rules:
                try:
                    document = yaml.safe_load(Path(rule_file).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    raise ValueError(
                        f"semgrep rule file {rule_file} is unreadable: {exc}"
                    ) from None
                rules = document.get("rules") if isinstance(document, dict) else None
                if not isinstance(rules, list):
                    raise ValueError(
                        f"semgrep rule file {rule_file}: expected a top-level 'rules' list"
                    )
                for index, rule in enumerate(rules):
                    if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
                        raise ValueError(f"semgrep rule file {rule_file}: rules[{index}] has no id")
                    ids.append(rule["id"])
                    languages = rule.get("languages")
                    for language in languages if isinstance(languages, list) else []:
                        key = str(language).lower()
                        if key in _LANGUAGE_SUFFIXES:
                            suffixes.update(_LANGUAGE_SUFFIXES[key])
                        elif key in _NAMED_FILES:
                            names.update(_NAMED_FILES[key])
                        else:
                            suffixes.add("*")
            self._rule_info = (ids, sorted(suffixes), sorted(names))
        return self._rule_info

    def _command(self, files: Sequence[SourceFile]) -> list[str]:
        binary = self._binary()
        assert binary is not None  # checked by unavailable_reason()
        command = [binary, "scan", "--metrics=off", "--json"]
        if self.memory_limit:
            command.append(f"--max-memory={max(1, self.memory_limit // 2**20)}")
        for rule in self.rules:
            command += ["--config", rule]
        command += ["--disable-version-check", "--quiet", "--"]
        command += [source.relpath for source in files]
        return command

    def _run(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        try:
            done = _run_program(self._command(files), self.timeout, cwd=root)
        except subprocess.TimeoutExpired:
            reason = f"semgrep timed out after {self.timeout:g} s"
            return [FileResult(s.relpath, skipped=reason) for s in files]
        except OSError as exc:
            return [FileResult(s.relpath, skipped=f"semgrep could not start: {exc}") for s in files]
        try:
            output = json.loads(done.stdout)
        except (json.JSONDecodeError, UnicodeDecodeError):
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            reason = redact_text(
                f"semgrep failed (exit {done.returncode}): {' '.join(tail) or 'no output'}"
            )
            return [FileResult(s.relpath, skipped=reason) for s in files]
        return self.parse_output(output, files, done.returncode)

    def parse_output(
        self, output: Any, files: Sequence[SourceFile], returncode: int = 0
    ) -> list[FileResult]:
        """Turn semgrep's JSON output for ``files`` into one result per file, in order."""
        by_path = {s.relpath: FileResult(s.relpath) for s in files}
        content = {s.relpath: s.content for s in files}
        if not isinstance(output, dict):
            reason = "semgrep output is not a JSON object"
            return [FileResult(s.relpath, skipped=reason) for s in files]
        errors = _list(output.get("errors"))
        results = _list(output.get("results"))
        general: list[str] = []
        out_of_memory: set[str] = set()
        for error in errors:
            if not isinstance(error, dict):
                continue
            message = str(error.get("message") or error.get("long_msg") or error.get("type"))
            path = _norm(error.get("path"))
            if path in by_path:
                if error.get("type") == "Out of memory":
                    # Only a warning to semgrep, which gives up the file for that rule.
                    out_of_memory.add(path)
                elif error.get("level") == "error":
                    by_path[path].skipped = redact_text(f"semgrep: {message.strip()}")[:500]
            elif error.get("level") == "error":
                general.append(message.strip())
        for path in out_of_memory:
            by_path[path].skipped = ScanLimits(memory_bytes=self.memory_limit).memory_reason
        if general and returncode not in (0, 1) and not results:
            reason = redact_text(f"semgrep failed (exit {returncode}): {'; '.join(general)}")[:500]
            return [FileResult(s.relpath, skipped=reason) for s in files]

        ids, _, _ = self._rules()
        matches: dict[str, list[dict[str, Any]]] = {}
        for match in results:
            if isinstance(match, dict) and _norm(match.get("path")) in by_path:
                matches.setdefault(_norm(match.get("path")), []).append(match)
        for path, found in matches.items():
            found.sort(key=lambda m: (_pos(m, "start", "line"), _pos(m, "start", "col")))
            counter = FingerprintCounter()
            for match in found:
                finding = self._finding(match, path, content[path], ids, counter)
                if finding is not None:
                    by_path[path].findings.append(finding)
        return [by_path[s.relpath] for s in files]

    def _finding(
        self,
        match: dict[str, Any],
        path: str,
        content: bytes,
        ids: list[str],
        counter: FingerprintCounter,
    ) -> Finding | None:
        check_id = match.get("check_id")
        if not isinstance(check_id, str):
            return None
        rule_id = _own_rule_id(check_id, ids)
        extra = _dict(match.get("extra"))
        metadata = _dict(extra.get("metadata"))
        start_line = _pos(match, "start", "line")
        end_line = _pos(match, "end", "line") or start_line
        matched = _matched_text(content, match, start_line, end_line, path)
        secret = is_secret_rule("semgrep", rule_id, _strings(metadata.get("category")))
        if (
            str(metadata.get("subcategory", "")).lower() == "secrets"
            or "secret" in str(metadata.get("category", "")).lower()
        ):
            secret = True
        # A rule about secrets gets the strict redactor; any other match may still
        # hold a secret on its lines, so its code is redacted before it is hashed.
        message = redact_text(str(extra.get("message") or rule_id).strip(), strict=secret)
        snippet = None if secret else _snippet(content, start_line, end_line, path)
        confidence = str(metadata.get("confidence", "")).lower() or None
        references = _strings(metadata.get("references")) + _strings(metadata.get("source"))
        return Finding(
            # A secret's value must not even be hashed here: its rule and message stand in.
            fingerprint=counter.fingerprint(
                rule_id, path, message if secret else redact_text(matched, filename=path)
            ),
            rule_id=rule_id,
            scanner=self.id,
            severity=_SEVERITY.get(str(extra.get("severity", "")).upper(), Severity.MEDIUM),
            message=message,
            path=path,
            line=start_line,
            end_line=end_line,
            column=_pos(match, "start", "col") or None,
            category="secret" if secret else "custom",
            confidence=confidence if confidence in ("high", "medium", "low") else None,
            cwe=_cwe(metadata.get("cwe")),
            snippet=snippet,
            help_url=next((r for r in references if r.startswith(("https://", "http://"))), None),
            properties={"semgrep_check_id": check_id, "severity": extra.get("severity")},
        )


def _run_program(
    command: list[str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(command, capture_output=True)``, started outside the memory cap.

    Only the start is outside the scan worker's memory cap (the child keeps its
    limits from there); the worker waits for the output under its cap. The
    program is killed on any exception (its timeout, the file's time budget).
    """
    with outside_memory_limit():
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
        )
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            process.kill()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _environment() -> dict[str, str]:
    """The caller's environment with semgrep's network calls switched off."""
    env = dict(os.environ)
    env["SEMGREP_ENABLE_VERSION_CHECK"] = "0"
    env["SEMGREP_SEND_METRICS"] = "off"
    return env


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _norm(path: Any) -> str:
    if not isinstance(path, str):
        return ""
    text = path.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _pos(match: dict[str, Any], which: str, key: str) -> int:
    where = match.get(which)
    value = where.get(key) if isinstance(where, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _own_rule_id(check_id: str, ids: list[str]) -> str:
    """The rule's id without the folder prefix semgrep adds (longest known id wins)."""
    for rule_id in sorted(ids, key=len, reverse=True):
        if check_id == rule_id or check_id.endswith("." + rule_id):
            return rule_id
    return check_id


def _matched_text(
    content: bytes, match: dict[str, Any], start_line: int, end_line: int, path: str
) -> str:
    start, end = _pos(match, "start", "offset"), _pos(match, "end", "offset")
    if 0 <= start < end <= len(content):
        return content[start:end].decode("utf-8", "replace")
    return _snippet(content, start_line, end_line, path) or ""


def _snippet(content: bytes, start_line: int, end_line: int, path: str) -> str | None:
    # Semgrep no longer prints matched lines without a login; the content is at hand.
    if start_line <= 0:
        return None
    lines = content.decode("utf-8", "replace").splitlines()
    chosen = lines[start_line - 1 : min(end_line, start_line + _SNIPPET_LINES - 1)]
    # Cut after redaction: a secret cut in half is no longer recognised.
    text = redact_text("\n".join(chosen).strip(), filename=path)
    return text[:1000] or None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _cwe(value: Any) -> int | None:
    for text in _strings(value):
        found = re.search(r"CWE-0*(\d+)", text, re.IGNORECASE)
        if found:
            return int(found.group(1))
    return None
