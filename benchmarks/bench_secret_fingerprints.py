"""What the slow secret fingerprint costs a scan, and what it costs someone guessing.

A secret's fingerprint is keyed by scrypt of the value (``secret_key``), so
that testing guesses against a committed fingerprint costs real time. In one
run, on one tree of files holding 200 secrets (40 in quick mode):

- a cold scan with the default scrypt parameters, beside the same cold scan
  with the cheapest parameters a baseline may record (the derivation's share);
- a warm scan (every result from the content cache), beside the cold scan;
- guesses per second against one fingerprint (derive, then compare), beside
  guesses per second against a plain SHA-256 of the value.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Figure
from secperf.model import make_fingerprint
from secperf.security.cache import ScanCache
from secperf.security.discovery import FileDiscovery
from secperf.security.redaction import DEFAULT_SECRET_KDF, SecretKdf, secret_key
from secperf.security.scanners.secrets import SecretsScanner
from secperf.security.validator import SecurityValidator

AREA = "scanners"
SALT = bytes.fromhex("5ec0ffee5ec0ffee5ec0ffee5ec0ffee")
SECRETS_PER_FILE = 4
CHEAPEST = SecretKdf(n=2**10, r=1, p=1)


def _tree(root: Path, secrets: int) -> None:
    for index in range(secrets // SECRETS_PER_FILE):
        lines = [f"# settings {index}\n"]
        for slot in range(SECRETS_PER_FILE):
            value = f"Benchmark-{index:04d}-{slot}-Q7xv9LmZ"
            lines.append(f'password_{slot} = "{value}"\n')
        (root / f"settings_{index:03d}.py").write_text("".join(lines))


def _scan_seconds(root: Path, kdf: SecretKdf, cache: ScanCache) -> tuple[float, int]:
    validator = SecurityValidator(
        [SecretsScanner(SALT, kdf=kdf)],
        discovery=FileDiscovery(exclude=["cache/"], respect_gitignore=False),
        cache=cache,
        jobs=os.cpu_count() or 1,
    )
    try:
        start = time.perf_counter()
        report = validator.scan(root)
        return time.perf_counter() - start, len(report.findings)
    finally:
        validator.close()


def _guesses_per_second(check: Callable[[str], bool], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        check(f"guess-{done}")
        done += 1
    return done / elapsed


def run(quick: bool) -> list[Figure]:
    secrets = 40 if quick else 200
    with tempfile.TemporaryDirectory(prefix="secperf-bench-fp-") as tmp:
        root = Path(tmp)
        _tree(root, secrets)
        cache = ScanCache(root / "cache" / "default.db")
        try:
            cold_s, found = _scan_seconds(root, DEFAULT_SECRET_KDF, cache)
            warm_s, _ = _scan_seconds(root, DEFAULT_SECRET_KDF, cache)
        finally:
            cache.close()
        cheap_cache = ScanCache(root / "cache" / "cheap.db")
        try:
            cheap_s, _ = _scan_seconds(root, CHEAPEST, cheap_cache)
        finally:
            cheap_cache.close()

    stored = make_fingerprint("secret-keyword", "settings.py", secret_key(SALT, "the-real-one"))
    plain = hashlib.sha256(b"the-real-one").hexdigest()
    window = 1.0 if quick else 3.0
    slow_rate = _guesses_per_second(
        lambda guess: (
            make_fingerprint("secret-keyword", "settings.py", secret_key(SALT, guess)) == stored
        ),
        window,
    )
    fast_rate = _guesses_per_second(
        lambda guess: hashlib.sha256(guess.encode()).hexdigest() == plain, window
    )
    kdf = DEFAULT_SECRET_KDF
    scope = f"{secrets} secrets in {secrets // SECRETS_PER_FILE} files, {os.cpu_count()} workers"
    return [
        Figure(
            area=AREA,
            name="secrets scan, cold, scrypt fingerprints",
            value=cold_s,
            unit="s",
            target="context: the derivation's share of a cold scan",
            met=None,
            anchor_name=f"same scan, cheapest parameters (n={CHEAPEST.n}, r={CHEAPEST.r})",
            anchor_value=cheap_s,
            note=f"{scope}; {found} findings; scrypt n={kdf.n}, r={kdf.r}, p={kdf.p}",
        ),
        Figure(
            area=AREA,
            name="secrets scan, warm (content cache)",
            value=warm_s,
            unit="s",
            target="<= 0.2x the cold scan",
            met=warm_s <= 0.2 * cold_s,
            anchor_name="the cold scan",
            anchor_value=cold_s,
            note=f"{scope}; no secret is derived again",
        ),
        Figure(
            area=AREA,
            name="guesses per second against a secret fingerprint",
            value=slow_rate,
            unit="guesses/s",
            target="<= 100 guesses/s per core (>= 10 ms a guess)",
            met=slow_rate <= 100,
            anchor_name="plain SHA-256 of the value",
            anchor_value=fast_rate,
            note=f"one core; the plain hash confirms {fast_rate / slow_rate:,.0f}x more guesses",
        ),
    ]
