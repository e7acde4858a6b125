"""Redacted previews and salted hashes of secrets."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from secperf.security.redaction import MASK, check_salt, redact, secret_hash, shown_per_side


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("ghp_FAKE0123456789abcdefghijklmnopqrstuv", "ghp_****stuv"),
        ("AKIAIOSFODNN7EXAMPLE", "AKI****PLE"),
        ("FakeIniPassw0rd", "Fa****rd"),
        ("hunter2", "h****2"),
        ("short", MASK),
        ("", MASK),
    ],
)
def test_redact_shows_only_the_ends(secret: str, expected: str) -> None:
    assert redact(secret) == expected


@pytest.mark.parametrize("length", range(0, 200))
def test_redact_never_shows_more_than_a_third(length: int) -> None:
    secret = "".join(chr(0x41 + (i * 7) % 26) for i in range(length))
    preview = redact(secret)
    shown = len(preview) - len(MASK)
    assert shown <= length / 3
    assert shown == 2 * shown_per_side(length)
    if length >= 6:
        assert secret not in preview


def test_secret_hash_is_hmac_sha256_under_the_salt() -> None:
    salt = b"project-salt"
    expected = hmac.new(salt, b"FakeTestPassw0rd", hashlib.sha256).hexdigest()
    assert secret_hash(salt, "FakeTestPassw0rd") == expected
    assert secret_hash(b"other-salt", "FakeTestPassw0rd") != expected
    assert len(expected) == 64


def test_salt_must_be_non_empty_bytes() -> None:
    with pytest.raises(TypeError, match="salt must be bytes, got str"):
        secret_hash("text-salt", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        check_salt(b"")
    assert check_salt(bytearray(b"ab")) == b"ab"
