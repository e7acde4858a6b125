"""The scan cache: results by content, so unchanged files are never rescanned.

Key = scanner id + scanner version + config hash + file path + content hash.
The path is part of the key because a finding's fingerprint includes its path:
two files with the same bytes (empty ``__init__.py`` files) must not share
findings. A changed rule or tool version changes the key, so it invalidates
exactly the entries it must.

A second table remembers (path, size, mtime) -> content hash and line count, so
a warm rescan need not read files whose stat has not changed.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import TypeAdapter

from secperf.model import Finding

_FINDINGS = TypeAdapter(list[Finding])
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    skipped TEXT,
    findings BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS file_state (
    relpath TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    lines INTEGER NOT NULL
);
"""
# Keeps IN (...) lists under SQLite's bound-parameter limit.
_CHUNK = 500


def content_hash(content: bytes) -> str:
    """The content part of a cache key."""
    return hashlib.sha256(content).hexdigest()


def cache_key(scanner_id: str, version: str, config_hash: str, relpath: str, digest: str) -> str:
    """The full cache key of one scanner's result on one file."""
    raw = "\x00".join((scanner_id, version, config_hash, relpath, digest))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class CachedResult:
    """A cached scanner result: findings, or the reason the file was skipped."""

    __slots__ = ("findings", "skipped")

    def __init__(self, findings: list[Finding], skipped: str | None) -> None:
        self.findings = findings
        self.skipped = skipped


class ScanCache:
    """A small SQLite database of scanner results keyed by content."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def known_files(self) -> dict[str, tuple[int, int, str, int]]:
        """relpath -> (size, mtime_ns, sha256, lines) as last seen."""
        rows = self._db.execute("SELECT relpath, size, mtime_ns, sha256, lines FROM file_state")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def remember_files(self, entries: Iterable[tuple[str, int, int, str, int]]) -> None:
        """Store (relpath, size, mtime_ns, sha256, lines) for the next scan."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO file_state (relpath, size, mtime_ns, sha256, lines) "
                "VALUES (?, ?, ?, ?, ?)",
                list(entries),
            )

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedResult]:
        """The cached results among ``keys``."""
        found: dict[str, CachedResult] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, skipped, findings FROM results WHERE key IN ({marks})",  # noqa: S608
                chunk,
            )
            for key, skipped, blob in rows:
                found[key] = CachedResult(_FINDINGS.validate_json(blob), skipped)
        return found

    def put_many(self, entries: Iterable[tuple[str, list[Finding], str | None]]) -> None:
        """Store (key, findings, skipped reason) results."""
        now = time.time_ns() // 1_000_000
        rows = [
            (key, skipped, _FINDINGS.dump_json(findings), now) for key, findings, skipped in entries
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO results (key, skipped, findings, created_ms) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM results")
            self._db.execute("DELETE FROM file_state")
