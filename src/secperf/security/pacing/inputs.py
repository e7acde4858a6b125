"""What a scan will read, known before it runs and cheap to get.

The cost model predicts a scan from these inputs: per scanner, the files it
will look at and the (file, scanner) jobs the content cache will miss. A miss
is expected where the cache's stat memo (path -> size, mtime, hash, lines)
does not hold the file with the size and mtime it has now; a file whose stat
is unchanged is assumed to be a hit (a changed rule or scanner version misses
too, which this does not see). Gathering costs one discovery walk (the scan
does the same walk) and one read of the memo: no file is opened.

Which scanners read which file is the costly part of a large tree (a call
per file and scanner). The inputs carry a fingerprint of everything their
totals depend on (each file's path, size, mtime, expected lines and cache
hit, and the scanners with their configuration): when the previous
prediction's fingerprint is the same, its totals are reused and only the
files the cache will miss are asked about, so a warm scan of an unchanged
tree predicts in a few milliseconds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secperf.security.cache import ScanCache
from secperf.security.discovery import CandidateFile, Discovery, FileDiscovery
from secperf.security.scanners.interface import Scanner

#: Bytes per line assumed for files the memo has never seen, until it has seen some.
DEFAULT_BYTES_PER_LINE = 40.0
#: The cache's stat memo: relpath -> (size, mtime_ns, sha256, lines).
KnownFiles = dict[str, tuple[int, int, str, int]]


@dataclass(frozen=True, slots=True)
class ScannerInputs:
    """What one scanner will look at, and what of it the cache is expected to miss."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    misses: int = 0
    missed_bytes: int = 0
    missed_lines: int = 0

    def to_document(self) -> dict[str, int]:
        """As stored in the ``prediction`` document's ``inputs.per_scanner``."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "misses": self.misses,
            "missed_bytes": self.missed_bytes,
            "missed_lines": self.missed_lines,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ScannerInputs:
        """Read back ``to_document``'s form; missing or odd values count as 0."""
        return cls(**{name: _count(doc.get(name)) for name in _SCANNER_FIELDS})


_SCANNER_FIELDS = ("files", "bytes", "lines", "misses", "missed_bytes", "missed_lines")


def _count(value: Any) -> int:
    """A stored count, or 0 when it is not one (negative, or not finite: JSON allows Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class ScanInputs:
    """What a whole scan will read: files, bytes, lines and expected cache misses.

    ``files``/``bytes``/``lines`` count each file once (whatever number of
    scanners read it); ``expected_misses`` counts (file, scanner) jobs, as the
    scan's own ``cache_misses`` does.
    """

    files: int = 0
    bytes: int = 0
    lines: int = 0
    expected_misses: int = 0
    per_scanner: dict[str, ScannerInputs] = field(default_factory=dict)
    #: Scanners that will not run here (not installed, no data), with why.
    unavailable: dict[str, str] = field(default_factory=dict)
    #: Worker processes the scan will use.
    jobs: int = 1
    #: Whether the content cache is in use (without it every job misses).
    cached: bool = True
    #: Fingerprint of what the totals depend on ("" when unknown), see the module docstring.
    tree: str = ""

    def to_document(self) -> dict[str, Any]:
        """As stored in the ``prediction`` document's ``inputs``."""
        doc: dict[str, Any] = {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "expected_misses": self.expected_misses,
            "per_scanner": {sid: s.to_document() for sid, s in self.per_scanner.items()},
            "jobs": self.jobs,
            "cached": self.cached,
        }
        if self.tree:
            doc["tree"] = self.tree
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ScanInputs:
        """Read back ``to_document``'s form (older or partial documents give zeros)."""
        per = doc.get("per_scanner")
        per_scanner = (
            {
                str(sid): ScannerInputs.from_document(value)
                for sid, value in per.items()
                if isinstance(value, Mapping)
            }
            if isinstance(per, Mapping)
            else {}
        )
        return cls(
            files=_count(doc.get("files")),
            bytes=_count(doc.get("bytes")),
            lines=_count(doc.get("lines")),
            expected_misses=_count(doc.get("expected_misses")),
            per_scanner=per_scanner,
            jobs=max(1, _count(doc.get("jobs"))),
            cached=bool(doc.get("cached", True)),
            tree=str(doc.get("tree") or ""),
        )


def gather_inputs(
    scanners: Sequence[Scanner],
    discovery: FileDiscovery,
    cache: ScanCache | None,
    root: Path,
    paths: Sequence[str] = (".",),
    *,
    jobs: int = 1,
    walked: list[Discovery] | None = None,
    memo: list[KnownFiles] | None = None,
    previous: ScanInputs | None = None,
) -> ScanInputs:
    """The inputs of a scan of ``paths`` under ``root`` by ``scanners``, without opening a file.

    ``walked``, when given, receives the discovery walk, and ``memo`` the
    cache's stat memo as read, so the scan can reuse them.
    ``previous``: the inputs of the last prediction of this target; their totals
    are reused when their fingerprint matches (see the module docstring).
    """
    root = root.resolve()
    available: list[Scanner] = []
    unavailable: dict[str, str] = {}
    for scanner in scanners:
        reason = scanner.unavailable_reason()
        if reason is None:
            available.append(scanner)
        else:
            unavailable[scanner.id] = reason
    found = discovery.discover(root, paths)
    if walked is not None:
        walked.append(found)
    known: KnownFiles = {}
    if cache is not None:
        take_back_memo(cache)  # a memo handed over to a scan that never ran is stale
        known = cache.known_files()
    if memo is not None:
        memo.append(known)
    bytes_per_line = _bytes_per_line(known)
    # One pass over the tree without asking the scanners: each file's expected
    # lines and whether the cache will hit, and the fingerprint of it all.
    fingerprint = hashlib.blake2b(digest_size=16)
    fingerprint.update(repr((cache is not None, _scanners_key(available))).encode())
    sized: list[tuple[CandidateFile, int, bool]] = []
    for candidate in found.files:
        seen = known.get(candidate.relpath)
        if seen is not None and seen[0] == candidate.size:
            lines = seen[3]  # same size: most likely the same number of lines
            hit = cache is not None and seen[1] == candidate.mtime_ns
        else:
            lines = round(candidate.size / bytes_per_line)
            hit = False
        sized.append((candidate, lines, hit))
    fingerprint.update(
        "\n".join(
            f"{c.relpath}\0{c.size}\0{c.mtime_ns}\0{lines}\0{hit:d}" for c, lines, hit in sized
        ).encode()
    )
    tree = fingerprint.hexdigest()
    reuse = previous is not None and previous.tree == tree
    totals = {s.id: [0, 0, 0, 0, 0, 0] for s in available}
    if reuse:
        assert previous is not None
        for sid, row in totals.items():
            before = previous.per_scanner.get(sid, ScannerInputs())
            row[:3] = [before.files, before.bytes, before.lines]
        files, size_total, lines_total = previous.files, previous.bytes, previous.lines
    else:
        files = size_total = lines_total = 0
    misses = 0
    for candidate, lines, hit in sized:
        if reuse and hit:
            continue  # counted in the reused totals, and not a miss
        readers = [s for s in available if s.applies_to(candidate.relpath)]
        if not readers:
            continue
        if not reuse:
            files += 1
            size_total += candidate.size
            lines_total += lines
        for scanner in readers:
            row = totals[scanner.id]
            if not reuse:
                row[0] += 1
                row[1] += candidate.size
                row[2] += lines
            if not hit:
                misses += 1
                row[3] += 1
                row[4] += candidate.size
                row[5] += lines
    return ScanInputs(
        files=files,
        bytes=size_total,
        lines=lines_total,
        expected_misses=misses,
        per_scanner={sid: ScannerInputs(*row) for sid, row in totals.items()},
        unavailable=unavailable,
        jobs=max(1, jobs),
        cached=cache is not None,
        tree=tree,
    )


def _scanners_key(scanners: Sequence[Scanner]) -> list[tuple[str, str, str]]:
    """What decides which files each scanner reads: its kind, id and configuration."""
    return [(type(s).__qualname__, s.id, s.config_hash()) for s in scanners]


def _bytes_per_line(known: KnownFiles) -> float:
    size = sum(entry[0] for entry in known.values())
    lines = sum(entry[3] for entry in known.values())
    return size / lines if lines > 0 and size > 0 else DEFAULT_BYTES_PER_LINE


class WalkHandedOver(FileDiscovery):
    """Answers the next ``discover`` of the same root and paths with a walk already made.

    The prediction walks the tree just before the scan does: handing its walk
    over (see ``hand_over``) spares the scan a second one. The first call puts
    the owner's own discovery back; any other root or paths walk as it does.
    """

    def __init__(
        self, owner: Any, inner: FileDiscovery, root: Path, paths: Sequence[str], walk: Discovery
    ) -> None:
        # Not FileDiscovery's own state: everything but the one handed-over walk is inner's.
        self.owner = owner
        self.inner = inner
        self._key = (root.resolve(), tuple(paths))
        self._handed = walk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def discover(self, root: Path, paths: Sequence[str] = (".",)) -> Discovery:
        if self.owner.discovery is self:
            self.owner.discovery = self.inner
        if (root.resolve(), tuple(paths)) == self._key:
            return self._handed
        return self.inner.discover(root, paths)


def hand_over(owner: Any, root: Path, paths: Sequence[str], walk: Discovery) -> None:
    """Give ``owner.discovery`` (a validator's) ``walk`` for its next scan of ``root``."""
    owner.discovery = WalkHandedOver(owner, owner.discovery, root, paths, walk)


def hand_over_memo(cache: ScanCache, known: KnownFiles) -> None:
    """Answer ``cache``'s next ``known_files()`` (the scan's) with ``known``, read just now.

    The prediction reads the memo right before the scan does; the scan reads
    nothing between the two, so the same dict serves both. The answer is an
    attribute of this one cache object that removes itself when used (or when
    ``take_back_memo`` finds it unused).
    """

    def once() -> KnownFiles:
        take_back_memo(cache)
        return known

    # The instance attribute shadows the method once; the class is left alone.
    vars(cache)["known_files"] = once


def take_back_memo(cache: ScanCache) -> None:
    """Forget a memo handed over by ``hand_over_memo`` and not used yet."""
    vars(cache).pop("known_files", None)
