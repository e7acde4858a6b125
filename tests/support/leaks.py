"""What a leaked secret would look like in an output: the tests search for these."""

from __future__ import annotations

import hashlib
import hmac


def value_hashes(salt: bytes, value: str) -> set[str]:
    """Fast hashes of ``value`` a careless tool might keep (salted HMAC, plain SHA-256).

    secperf keeps neither: a fingerprint is keyed by a slow scrypt derivation.
    Whoever holds the project's salt could test guesses against either.
    """
    data = value.encode("utf-8", "surrogatepass")
    return {
        hmac.new(salt, data, hashlib.sha256).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    }
