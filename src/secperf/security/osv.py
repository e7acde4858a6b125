"""OSV advisories for PyPI: load, index, match versions, rate severity, query online.

Offline, records come from a directory of OSV JSON files or an OSV ``all.zip``
(e.g. the PyPI export at
https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip); online, from
the OSV API (``POST /v1/querybatch`` then ``GET /v1/vulns/{id}``). Versions are
compared with ``packaging.version`` as PEP 440 orders them.

Severity: the CVSS v3.x base score computed from the record's vector (>= 9.0
critical, >= 7.0 high, >= 4.0 medium, > 0 low, 0 info); else the database's
own rating (GitHub's CRITICAL/HIGH/MODERATE/LOW); else medium, because an
unrated known vulnerability is still a vulnerability. CVSS v2 and v4 vectors
are not scored.

One idea, kept whole though it runs past 600 lines: the OSV data source
(loading, the version index, matching, severity and the online query) reads
one record format end to end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from secperf.config.units import mask_url, scrub_url
from secperf.model import Severity
from secperf.url_auth import without_credentials

log = logging.getLogger(__name__)

ECOSYSTEM = "PyPI"
DEFAULT_API_URL = "https://api.osv.dev"
#: The OSV API accepts at most this many queries in one batch.
BATCH_LIMIT = 1000


class OsvRecordError(ValueError):
    """An OSV record that cannot be used, with the source and field at fault."""


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """An OSV record that was not used, why, and which PyPI packages it names.

    ``problem`` names the record's source (file, archive member or API id), its
    id when known and the field at fault. ``packages`` holds the canonical
    names of the PyPI packages the record names, as far as they can be read;
    None when that cannot be told (the record is not even JSON), in which case
    it may concern any package.
    """

    problem: str
    packages: frozenset[str] | None = None

    def concerns(self, names: Iterable[str]) -> bool:
        """Whether the record may be about one of ``names`` (canonical names)."""
        return self.packages is None or not self.packages.isdisjoint(names)

    def __str__(self) -> str:
        return self.problem


def packages_named(data: Any) -> frozenset[str] | None:
    """The canonical PyPI package names a (possibly malformed) record names.

    None when the record's ``affected`` list cannot be read far enough to tell;
    an empty set when it names only other ecosystems' packages.
    """
    affected = data.get("affected") if isinstance(data, dict) else None
    if not isinstance(affected, list):
        return None
    names: set[str] = set()
    for entry in affected:
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict) or not isinstance(package.get("ecosystem"), str):
            return None
        if package["ecosystem"] != ECOSYSTEM:
            continue
        name = package.get("name")
        if not isinstance(name, str) or not name.strip():
            return None
        names.add(canonicalize_name(name))
    return frozenset(names)


# ----------------------------------------------------------------- CVSS v3


_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required weighs more when the scope changes.
_PR_SCOPE_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}


def _roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, free of float noise."""
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of ``vector`` (e.g. ``CVSS:3.1/AV:N/AC:L/...``).

    Temporal and environmental metrics in the vector are ignored. Raises
    ValueError naming the problem when the vector is not a valid v3 vector.
    """
    parts = vector.strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"malformed CVSS metric {part!r} in {vector!r}")
        if key in metrics:
            raise ValueError(f"CVSS metric {key} given twice in {vector!r}")
        metrics[key] = value
    for key, allowed in _CVSS3_WEIGHTS.items():
        if metrics.get(key) not in allowed:
            raise ValueError(f"CVSS vector {vector!r} lacks a valid {key} metric")
    changed = metrics["S"] == "C"
    weight = _CVSS3_WEIGHTS
    iss = 1 - (
        (1 - weight["C"][metrics["C"]])
        * (1 - weight["I"][metrics["I"]])
        * (1 - weight["A"][metrics["A"]])
    )
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    privileges = (_PR_SCOPE_CHANGED if changed else weight["PR"])[metrics["PR"]]
    exploitability = (
        8.22 * weight["AV"][metrics["AV"]] * weight["AC"][metrics["AC"]] * privileges
    ) * weight["UI"][metrics["UI"]]
    if impact <= 0:
        return 0.0
    if changed:
        return _roundup(min(1.08 * (impact + exploitability), 10.0))
    return _roundup(min(impact + exploitability, 10.0))


def severity_from_score(score: float) -> Severity:
    """Map a CVSS-like score to secperf's scale as GitHub and NVD do."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO


_DATABASE_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}


# ----------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One ``affected`` entry for a PyPI package: its ranges' events and listed versions."""

    name: str  # canonical name
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # per range: (event kind, version) pairs
    versions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """The parts of an OSV record that a finding needs."""

    id: str
    summary: str
    aliases: tuple[str, ...]
    severity: Severity
    severity_source: str  # "cvss_v3" | "database" | "default"
    cvss_vector: str | None
    cvss_score: float | None
    help_url: str
    cwe: int | None
    modified: str
    affected: tuple[AffectedPackage, ...] = field(default=())

    def packages(self) -> set[str]:
        return {a.name for a in self.affected}


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise OsvRecordError(f"{where}: {what}: expected {names}, got {type(value).__name__}")
    return value


def parse_record(data: Any, source: str) -> Vulnerability | None:
    """Build a Vulnerability from one OSV JSON record.

    Returns None for records that do not concern PyPI or are withdrawn; raises
    OsvRecordError naming ``source`` and the field when the record is malformed.
    """
    _expect(data, dict, source, "record")
    vuln_id = _expect(data.get("id"), str, source, "id")
    if not vuln_id.strip():
        raise OsvRecordError(f"{source}: id: empty")
    where = f"{source} ({vuln_id})"
    if data.get("withdrawn"):
        return None
    affected_raw = _expect(data.get("affected", []), list, where, "affected")
    affected: list[AffectedPackage] = []
    extra_severity: list[Any] = []
    for index, entry in enumerate(affected_raw):
        at = f"affected[{index}]"
        _expect(entry, dict, where, at)
        package = _expect(entry.get("package", {}), dict, where, f"{at}.package")
        if package.get("ecosystem") != ECOSYSTEM:
            continue
        name = _expect(package.get("name"), str, where, f"{at}.package.name")
        if not name.strip():
            raise OsvRecordError(f"{where}: {at}.package.name: empty")
        ranges: list[tuple[tuple[str, str], ...]] = []
        for r_index, version_range in enumerate(
            _expect(entry.get("ranges", []), list, where, f"{at}.ranges")
        ):
            r_at = f"{at}.ranges[{r_index}]"
            _expect(version_range, dict, where, r_at)
            if version_range.get("type") != "ECOSYSTEM":
                continue  # GIT ranges name commits, not releases
            events: list[tuple[str, str]] = []
            for e_index, event in enumerate(
                _expect(version_range.get("events"), list, where, f"{r_at}.events")
            ):
                _expect(event, dict, where, f"{r_at}.events[{e_index}]")
                for kind in ("introduced", "fixed", "last_affected"):
                    if kind in event:
                        value = _expect(event[kind], str, where, f"{r_at}.events[{e_index}].{kind}")
                        events.append((kind, value))
            ranges.append(tuple(events))
        versions = _expect(entry.get("versions", []), list, where, f"{at}.versions")
        for v_index, listed in enumerate(versions):
            # A dropped version would be a vulnerable release silently not matched.
            _expect(listed, str, where, f"{at}.versions[{v_index}]")
        affected.append(
            AffectedPackage(canonicalize_name(name), tuple(ranges), frozenset(versions))
        )
        if isinstance(entry.get("severity"), list):
            extra_severity += entry["severity"]
    if not affected:
        return None

    aliases = tuple(
        a for a in _expect(data.get("aliases", []), list, where, "aliases") if isinstance(a, str)
    )
    summary = data.get("summary") or ""
    if not isinstance(summary, str) or not summary:
        details = data.get("details")
        summary = details.strip().splitlines()[0] if isinstance(details, str) and details else ""
    severity_list = _expect(data.get("severity", []), list, where, "severity") + extra_severity
    vector: str | None = None
    score: float | None = None
    for entry in severity_list:
        if isinstance(entry, dict) and entry.get("type") in ("CVSS_V3", "CVSS_V31"):
            candidate = entry.get("score")
            if not isinstance(candidate, str):
                continue
            try:
                score = cvss3_base_score(candidate)
            except ValueError as exc:
                log.warning("%s: ignoring its CVSS vector: %s", where, exc)
                continue
            vector = candidate
            break
    database = data.get("database_specific")
    database = database if isinstance(database, dict) else {}
    if score is not None:
        severity, source_of_severity = severity_from_score(score), "cvss_v3"
    elif str(database.get("severity", "")).upper() in _DATABASE_SEVERITY:
        severity = _DATABASE_SEVERITY[str(database["severity"]).upper()]
        source_of_severity = "database"
    else:
        severity, source_of_severity = Severity.MEDIUM, "default"
    cwe: int | None = None
    cwe_ids = database.get("cwe_ids")
    if isinstance(cwe_ids, list):
        for cwe_id in cwe_ids:
            if isinstance(cwe_id, str) and cwe_id.upper().startswith("CWE-"):
                digits = cwe_id[4:]
                if digits.isdigit():
                    cwe = int(digits)
                    break
    return Vulnerability(
        id=vuln_id,
        summary=summary.strip(),
        aliases=aliases,
        severity=severity,
        severity_source=source_of_severity,
        cvss_vector=vector,
        cvss_score=score,
        help_url=_help_url(vuln_id, data.get("references")),
        cwe=cwe,
        modified=str(data.get("modified", "")),
        affected=tuple(affected),
    )


def _help_url(vuln_id: str, references: Any) -> str:
    if isinstance(references, list):
        for wanted in ("ADVISORY", "WEB"):
            for ref in references:
                if isinstance(ref, dict) and ref.get("type") == wanted:
                    url = ref.get("url")
                    if isinstance(url, str) and url.startswith(("https://", "http://")):
                        return url
    return f"https://osv.dev/vulnerability/{urllib.parse.quote(vuln_id)}"


# ----------------------------------------------------------------- matching


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: Sequence[tuple[str, str]]) -> bool:
    """OSV's evaluation of one ECOSYSTEM range: walk the events in version order."""
    ordered: list[tuple[Version, int, str]] = []
    for kind, text in events:
        if kind == "introduced" and text == "0":
            ordered.append((Version("0"), 0, kind))
            continue
        parsed = _version(text)
        if parsed is None:
            continue  # an unparseable bound cannot be compared; the versions list still counts
        ordered.append((parsed, 0 if kind == "introduced" else 1, kind))
    ordered.sort()
    affected = False
    for bound, _, kind in ordered:
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind == "fixed" and version >= bound) or (
            kind == "last_affected" and version > bound
        ):
            affected = False
    return affected


def is_affected(vuln: Vulnerability, package: str, version: str) -> bool:
    """Whether ``package`` at ``version`` is affected by ``vuln``."""
    name = canonicalize_name(package)
    parsed = _version(version)
    for entry in vuln.affected:
        if entry.name != name:
            continue
        if version in entry.versions:
            return True
        if parsed is None:
            continue
        if any(_version(v) == parsed for v in entry.versions):
            return True
        if any(_in_range(parsed, events) for events in entry.ranges):
            return True
    return False


def fixed_versions(vuln: Vulnerability, package: str, version: str) -> list[str]:
    """The fixed versions of ``package`` in ``vuln``: the smallest above ``version`` first,
    then the rest in ascending order."""
    name = canonicalize_name(package)
    fixes: set[str] = set()
    for entry in vuln.affected:
        if entry.name == name:
            fixes.update(
                text for events in entry.ranges for kind, text in events if kind == "fixed"
            )
    parsed = _version(version)
    comparable = sorted((v for v in fixes if _version(v) is not None), key=Version)
    others = sorted(v for v in fixes if _version(v) is None)
    if parsed is None:
        return comparable + others
    above = [v for v in comparable if Version(v) > parsed]
    below = [v for v in comparable if Version(v) <= parsed]
    return above + below + others


def deduplicate(vulns: Iterable[Vulnerability]) -> list[tuple[Vulnerability, tuple[str, ...]]]:
    """Fold records that describe one vulnerability (PYSEC and GHSA twins sharing ids).

    Keeps the best-rated record of each group (CVSS first, then a GitHub id)
    and returns it with the union of the group's other ids as its aliases.
    """
    items = sorted(vulns, key=lambda v: v.id)
    groups: list[tuple[set[str], list[Vulnerability]]] = []
    for vuln in items:
        ids = {vuln.id, *vuln.aliases}
        joined = [g for g in groups if g[0] & ids]
        merged_ids, members = set(ids), [vuln]
        for group in joined:
            merged_ids |= group[0]
            members += group[1]
            groups.remove(group)
        groups.append((merged_ids, members))
    rank = {"cvss_v3": 0, "database": 1, "default": 2}
    out: list[tuple[Vulnerability, tuple[str, ...]]] = []
    for ids, members in groups:
        best = min(
            members, key=lambda v: (rank[v.severity_source], not v.id.startswith("GHSA"), v.id)
        )
        out.append((best, tuple(sorted(ids - {best.id}))))
    out.sort(key=lambda item: item[0].id)
    return out


# ----------------------------------------------------------------- offline database


def database_fingerprint(path: str) -> str:
    """A cheap identity of an OSV database on disk: changes when its files change."""
    target = Path(path)
    digest = hashlib.sha256(str(target.resolve()).encode())
    try:
        if target.is_dir():
            with os.scandir(target) as entries:
                listing = sorted(
                    (e.name, e.stat().st_size, e.stat().st_mtime_ns)
                    for e in entries
                    if e.is_file() and e.name.endswith(".json")
                )
            for name, size, mtime in listing:
                digest.update(f"{name}\0{size}\0{mtime}\0".encode())
        else:
            stat = target.stat()
            digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}".encode())
    except OSError as exc:
        digest.update(f"unreadable:{exc}".encode())
    return digest.hexdigest()[:16]


def _iter_sources(path: Path) -> Iterator[tuple[str, bytes | OSError]]:
    """(name, bytes or the read error) for each JSON record under ``path``."""
    if path.is_dir():
        for file in sorted(path.glob("*.json")):
            try:
                yield str(file), file.read_bytes()
            except OSError as exc:
                yield str(file), exc
        return
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                yield f"{path}!{info.filename}", archive.read(info)
            except (OSError, zipfile.BadZipFile) as exc:
                yield f"{path}!{info.filename}", OSError(str(exc))


class OsvDatabase:
    """OSV records for PyPI indexed by canonical package name.

    ``rejected`` lists the records that were skipped, why, and which packages
    they name (``warnings``: the same as text); one bad record never stops the
    rest from loading, and the deps scanner reports the ones that may concern
    a pinned dependency.
    """

    def __init__(
        self, vulns: Iterable[Vulnerability] = (), rejected: Iterable[RejectedRecord] = ()
    ) -> None:
        self.by_package: dict[str, list[Vulnerability]] = {}
        self.rejected: list[RejectedRecord] = list(rejected)
        self.count = 0
        for vuln in vulns:
            self.add(vuln)

    @property
    def warnings(self) -> list[str]:
        """Each rejected record's problem (source, id and field)."""
        return [r.problem for r in self.rejected]

    def add(self, vuln: Vulnerability) -> None:
        self.count += 1
        for name in vuln.packages():
            self.by_package.setdefault(name, []).append(vuln)

    def reject(self, problem: str, packages: frozenset[str] | None = None) -> None:
        """Record a record that was not used."""
        self.rejected.append(RejectedRecord(problem, packages))

    @classmethod
    def load(cls, path: str | Path) -> OsvDatabase:
        """Load a directory of OSV JSON files or an OSV ``all.zip``.

        Raises OSError or ValueError naming the path when the database itself
        cannot be opened (missing, not a directory nor a zip archive).
        """
        target = Path(path)
        if not target.exists():
            raise OSError(f"OSV database {target} does not exist")
        if not target.is_dir() and not zipfile.is_zipfile(target):
            raise ValueError(f"OSV database {target} is neither a directory nor a zip archive")
        database = cls()
        for source, payload in _iter_sources(target):
            if isinstance(payload, OSError):
                database.reject(f"{source}: unreadable: {payload}")
                continue
            try:
                data = json.loads(payload)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                database.reject(f"{source}: invalid JSON: {exc}")
                continue
            try:
                vuln = parse_record(data, source)
            except OsvRecordError as exc:
                database.reject(str(exc), packages_named(data))
                continue
            if vuln is not None:
                database.add(vuln)
        for warning in database.warnings:
            log.warning("skipped OSV record: %s", warning)
        return database

    def query(self, package: str, version: str) -> list[Vulnerability]:
        """Every record that affects ``package`` at ``version``."""
        name = canonicalize_name(package)
        return [v for v in self.by_package.get(name, ()) if is_affected(v, name, version)]


# ----------------------------------------------------------------- online


class OsvApiError(RuntimeError):
    """The OSV API could not be reached or answered something unusable."""


class OsvClient:
    """A small client for the OSV API: batch queries, then the full records by id."""

    def __init__(self, base_url: str = DEFAULT_API_URL, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            shown = mask_url(base_url)
            raise ValueError(f"OSV API URL must be http(s)://host[:port], got {shown!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _request(self, path: str, body: Any | None = None) -> Any:
        # HTTP loads here: a scan reading a local OSV database, or cached, needs none.
        import http.client
        import urllib.error
        import urllib.request

        url = f"{self.base_url}{path}"
        # osv_api_url is configurable: a private mirror's URL may carry a password
        # or a ?token=, so errors show it as mask_url does.
        shown = mask_url(url)
        data = json.dumps(body).encode() if body is not None else None
        try:
            # A mirror's user:password is sent as Basic authentication.
            target, auth = without_credentials(url)
            request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
                target,
                data=data,
                method="POST" if data is not None else "GET",
                headers={"Content-Type": "application/json", "Accept": "application/json", **auth},
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise OsvApiError(f"OSV API {shown}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OsvApiError(f"OSV API {shown} unreachable: {reason}") from None
        except (ValueError, http.client.HTTPException) as exc:
            # http.client quotes parts of the URL: "nonnumeric port: 'pw@host'".
            why = scrub_url(f"{type(exc).__name__}: {exc}", url)
            raise OsvApiError(f"OSV API {shown} unusable: {why}") from None
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OsvApiError(f"OSV API {shown}: invalid JSON answer: {exc}") from None

    def query_batch(self, packages: Sequence[tuple[str, str]]) -> list[list[str]]:
        """The ids of the vulnerabilities affecting each (name, version), in order."""
        answers: list[list[str]] = []
        for start in range(0, len(packages), BATCH_LIMIT):
            chunk = packages[start : start + BATCH_LIMIT]
            pending: dict[int, str | None] = dict.fromkeys(range(len(chunk)))
            ids: list[list[str]] = [[] for _ in chunk]
            while pending:
                order = sorted(pending)
                queries = []
                for index in order:
                    name, version = chunk[index]
                    query: dict[str, Any] = {
                        "package": {"name": name, "ecosystem": ECOSYSTEM},
                        "version": version,
                    }
                    token = pending[index]
                    if token:
                        query["page_token"] = token
                    queries.append(query)
                answer = self._request("/v1/querybatch", {"queries": queries})
                results = answer.get("results") if isinstance(answer, dict) else None
                if not isinstance(results, list) or len(results) != len(order):
                    raise OsvApiError("OSV API querybatch: 'results' does not match the queries")
                pending = {}
                for index, result in zip(order, results, strict=True):
                    result = result if isinstance(result, dict) else {}
                    for vuln in result.get("vulns") or []:
                        if isinstance(vuln, dict) and isinstance(vuln.get("id"), str):
                            ids[index].append(vuln["id"])
                    token = result.get("next_page_token")
                    if isinstance(token, str) and token:
                        pending[index] = token
            answers += ids
        return answers

    def get(self, vuln_id: str) -> Any:
        """The full OSV record ``vuln_id`` as parsed JSON."""
        return self._request(f"/v1/vulns/{urllib.parse.quote(vuln_id, safe='')}")
