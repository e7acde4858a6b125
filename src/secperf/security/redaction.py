"""Keep secrets out of everything secperf stores: salted hashes and redacted previews.

A secret found by a scanner is reduced, inside the worker that found it, to
``secret_hash`` (HMAC-SHA256 under a per-project salt, so equal secrets can be
matched across scans without a dictionary attack on unsalted hashes) and
``redact`` (a preview that shows at most a third of the value).
"""

from __future__ import annotations

import hashlib
import hmac

#: What stands for the hidden middle of a secret.
MASK = "****"

#: Never show more than this many characters at each end, however long the secret.
MAX_SHOWN_PER_SIDE = 4


def shown_per_side(length: int) -> int:
    """How many characters of a secret of ``length`` characters each end may show.

    At most a sixth per side, so the preview never reveals more than a third of
    the value, and never more than ``MAX_SHOWN_PER_SIDE``.
    """
    return max(0, min(MAX_SHOWN_PER_SIDE, length // 6))


def redact(secret: str) -> str:
    """A preview of ``secret``: its first and last few characters around ``****``.

    ``redact("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB")`` is ``"ghp_****yzAB"``;
    secrets under 6 characters show nothing but the mask.
    """
    shown = shown_per_side(len(secret))
    if shown == 0:
        return MASK
    return f"{secret[:shown]}{MASK}{secret[-shown:]}"


def secret_hash(salt: bytes, secret: str) -> str:
    """HMAC-SHA256 of ``secret`` keyed by ``salt``, as 64 hex digits.

    Raises TypeError or ValueError when the salt is not non-empty bytes: an
    unsalted hash of a short secret can be reversed by brute force.
    """
    check_salt(salt)
    return hmac.new(salt, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def check_salt(salt: object) -> bytes:
    """Return ``salt`` when it is usable for ``secret_hash``, else raise naming the problem."""
    if not isinstance(salt, bytes | bytearray):
        raise TypeError(f"secret hash salt must be bytes, got {type(salt).__name__}")
    if len(salt) == 0:
        raise ValueError("secret hash salt must not be empty")
    return bytes(salt)
