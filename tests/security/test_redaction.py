"""The redactor, redacted previews and salted hashes of secrets."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secperf.model import Finding, Severity
from secperf.security.redaction import (
    DEFAULT_SECRET_KDF,
    MASK,
    check_salt,
    install_log_redaction,
    redact,
    redact_text,
    scrub_finding,
    secret_key,
    shown_per_side,
)
from support.leaks import value_hashes


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


def test_secret_key_is_scrypt_of_the_value_never_a_fast_hash() -> None:
    salt = b"project-salt"
    value = "FakeTestPassw0rd"
    kdf = DEFAULT_SECRET_KDF
    expected = hashlib.scrypt(
        value.encode(), salt=salt, n=kdf.n, r=kdf.r, p=kdf.p, maxmem=kdf.maxmem, dklen=32
    ).hex()
    assert secret_key(salt, value) == expected
    assert secret_key(b"other-salt", value) != expected
    # A value that differs only in the hidden middle is another secret.
    assert secret_key(salt, "FakeXXXXXXXXXXrd") != expected
    assert expected not in value_hashes(salt, value)
    assert expected != hmac.new(salt, redact(value).encode(), hashlib.sha256).hexdigest()


def test_salt_must_be_non_empty_bytes() -> None:
    with pytest.raises(TypeError, match="salt must be bytes, got str"):
        secret_key("text-salt", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        check_salt(b"")
    assert check_salt(bytearray(b"ab")) == b"ab"


# ----------------------------------------------------------------- the redactor

# Fake values in real formats.
GITHUB = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
AWS = "AKIAQ7XK4LMN2PQRSTUV"
SLACK = "xoxb-2840917365-5193740286155-Qw3Er5Ty7Ui9Op1As3Df5Gh"
KEY_BODY = "MIIEowIBAAKCAQEAq7Lz9XkF2vTn4pRw8sYb3Hj6Mc1Qe5Ud0Gi7Ko2Wx9Zt4Vn8Bs"


@pytest.mark.parametrize(
    ("text", "filename", "secret", "kept"),
    [
        # detect-secrets' plugins, on lines flagged for other reasons
        (
            f'requests.get(u, headers={{"Authorization": "token {GITHUB}"}}, verify=False)',
            "app.py",
            GITHUB,
            "ghp_****8Ue2",
        ),
        (f'subprocess.call("aws s3 ls --key {AWS}", shell=True)', "a.py", AWS, "AKI****TUV"),
        (f'open("/tmp/{SLACK}.log", "w")', "a.py", SLACK, "/tmp/xoxb****f5Gh.log"),
        ('password = "Tr0ub4dor&3-horse"', "settings.py", "Tr0ub4dor&3-horse", "Tr****se"),
        # keyword rules of the file type: unquoted values in YAML
        ("db_password: hunter2hunter2", "config.yaml", "hunter2hunter2", "hu****r2"),
        # known formats the plugins miss
        (
            'urlopen("ftp://deploy:S3cr3t-Pa55w0rd!x@files.example.com/db")',
            "a.py",
            "S3cr3t-Pa55w0rd!x",
            "ftp://deploy:S3****!x@files",
        ),
        (
            f'eval("-----BEGIN RSA PRIVATE KEY-----\\n{KEY_BODY}\\n-----END RSA PRIVATE KEY-----")',
            "a.py",
            KEY_BODY,
            "-----BEGIN RSA PRIVATE KEY-----****-----END",
        ),
        (
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n{KEY_BODY[::-1]}\n",
            "id_ed25519",
            KEY_BODY[10:40],
            "-----BEGIN OPENSSH PRIVATE KEY-----\n****\n",
        ),
        (
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
            ".env",
            "XUtnFEMI",
            "wJal****fiCY",
        ),
        (
            "curl -H 'Authorization: Bearer 9f8e7d6c5b4a3f2e1d0c'",
            "",
            "6c5b4a3f",
            "Bearer 9f8****d0c",
        ),
        ("github_pat_11ABCDEFG0123456789_abcdefghijKLMNOP", "", "0123456789", "gith****MNOP"),
    ],
)
def test_redact_text_hides_secrets_on_any_line(
    text: str, filename: str, secret: str, kept: str
) -> None:
    redacted = redact_text(text, filename=filename)
    assert secret not in redacted
    assert kept in redacted
    assert redact_text(redacted, filename=filename) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "Use of insecure MD2, MD4, MD5, or SHA1 hash function.",
        "subprocess call with shell=True identified, security issue.",
        'tmp = "/tmp/foo"',
        "password = get_password()",
        "password = settings.DATABASE_PASSWORD",
        "requests 2.25.1: GHSA-j8r2-6x86-q33q: Unintended leak of Proxy-Authorization header",
        "Requests to https://example.com/path?page=2 without a timeout",
        'headers={"Authorization": auth_header}',
        'headers = {"Authorization": "Bearer " + token}',
        "weighs_total_amount_in_grams = 3",
        "",
    ],
)
def test_redact_text_leaves_text_without_secrets_alone(text: str) -> None:
    assert redact_text(text) == text
    assert redact_text(text, filename="a.py") == text


def test_a_short_value_is_not_cut_out_of_other_words() -> None:
    # detect-secrets' basic-auth rule stops at "@" and reports "p"; "subprocess"
    # and "https" keep their p.
    text = 'subprocess.call("curl https://admin:p@ss!w0rd-42@db.example.com/x", shell=True)'
    assert redact_text(text) == (
        'subprocess.call("curl https://admin:p@****42@db.example.com/x", shell=True)'
    )


def test_strict_mode_takes_every_quoted_string_and_mixed_token() -> None:
    text = 'found "hunter2" for key AKIAIOSFODNN7EXAMPLE in src/app/settings.py'
    assert redact_text(text) == 'found "hunter2" for key AKI****PLE in src/app/settings.py'
    assert redact_text(text, strict=True) == (
        'found "h****2" for key AKI****PLE in src/app/settings.py'
    )
    assert redact_text("has detected secret for file a/b.py.", strict=True) == (
        "has detected secret for file a/b.py."
    )


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@given(_TEXT, st.sampled_from([GITHUB, AWS, SLACK, "S3cr3t-Pa55w0rd!x"]), _TEXT, st.booleans())
@settings(max_examples=150, deadline=None)
def test_a_planted_secret_never_survives(
    before: str, secret: str, after: str, strict: bool
) -> None:
    forms = [
        f"{before} https://u:{secret}@host/ {after}",
        f'{before} headers={{"Authorization": "token {secret}"}} {after}',
    ]
    if secret != "S3cr3t-Pa55w0rd!x":  # a password is only one where it is used as one
        forms += [f'{before} "{secret}" {after}', f"{before} {secret} {after}"]
    for planted in forms:
        redacted = redact_text(planted, strict=strict)
        assert secret not in redacted
        assert redact_text(redacted, strict=strict) == redacted


def test_scrub_finding_redacts_every_free_text_field() -> None:
    finding = Finding(
        fingerprint="f" * 32,
        rule_id="x/y",
        scanner="sarif",
        severity=Severity.HIGH,
        message=f"token {GITHUB} logged",
        path="app.py",
        line=3,
        snippet=f'log("{AWS}")',
        help_url="https://ci:S3cr3t-Pa55w0rd!x@docs.example.com/rule",
        properties={"rule_name": f"uses {SLACK}", "tags": [f"k={AWS}"], "n": 3},
    )
    scrubbed = scrub_finding(finding)
    text = repr(scrubbed)
    for secret in (GITHUB, AWS, SLACK, "S3cr3t-Pa55w0rd!x"):
        assert secret not in text
    assert scrubbed.properties["n"] == 3 and scrubbed.fingerprint == finding.fingerprint
    assert scrub_finding(scrubbed) == scrubbed
    clean = Finding("a" * 32, "B101", "bandit", Severity.LOW, "assert used", "t.py", 1)
    assert scrub_finding(clean) is clean


def test_log_records_are_redacted_message_arguments_and_traceback() -> None:
    token = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
    previous = logging.getLogRecordFactory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("secperf.test.redaction")
    logger.addHandler(handler)
    try:
        install_log_redaction()
        install_log_redaction()  # a second call changes nothing
        logger.warning("scanning app.py failed near %s", f'token = "{token}"')
        try:
            raise ValueError(f"bad line: Authorization: token {token}")
        except ValueError:
            logger.exception("bandit failed")
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(previous)
    text = stream.getvalue()
    assert "scanning app.py failed near" in text and "ValueError" in text
    assert token not in text and token[4:-4] not in text
