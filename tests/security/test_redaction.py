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


PW = "Hunter2Pass99zz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # curl (and an image running it), httpie: -u/-U/--user/--proxy-user/-a/--auth
        (
            f'subprocess.call("curl -u admin:{PW} https://x.example", shell=True)',
            'subprocess.call("curl -u admin:Hu****zz https://x.example", shell=True)',
        ),
        (f"curl -uadmin:{PW} https://x", "curl -uadmin:Hu****zz https://x"),
        (f"curl --user admin:{PW} https://x", "curl --user admin:Hu****zz https://x"),
        (f"curl --user=admin:{PW} https://x", "curl --user=admin:Hu****zz https://x"),
        (f"curl -x p:3128 -U proxy:{PW} https://x", "curl -x p:3128 -U proxy:Hu****zz https://x"),
        (f"curl --proxy-user proxy:{PW} https://x", "curl --proxy-user proxy:Hu****zz https://x"),
        ("curl -u 'admin:pass with spaces' https://x", "curl -u 'admin:pa****es' https://x"),
        (
            f'subprocess.call("curl -u \\"admin:{PW}\\" https://x", shell=True)',
            'subprocess.call("curl -u \\"admin:Hu****zz\\" https://x", shell=True)',
        ),
        (
            f'subprocess.run(["curl", "-s", "-u", "admin:{PW}", url])',
            'subprocess.run(["curl", "-s", "-u", "admin:Hu****zz", url])',
        ),
        (
            f'check_output([\n    "curl",\n    "--user",\n    "admin:{PW}",\n])',
            'check_output([\n    "curl",\n    "--user",\n    "admin:Hu****zz",\n])',
        ),
        (
            f"curl \\\n  -u admin:{PW} \\\n  https://x",
            "curl \\\n  -u admin:Hu****zz \\\n  https://x",
        ),
        (f"docker run curlimages/curl -u ci:{PW} https://x", "curlimages/curl -u ci:Hu****zz"),
        ("curl -u sk9Abc1234567890xyz: https://api.example", "curl -u sk9****xyz: https://"),
        (f"http -a admin:{PW} example.org/api", "http -a admin:Hu****zz example.org"),
        (f"https --auth=admin:{PW} example.org", "https --auth=admin:Hu****zz example.org"),
        (f"tool --user=admin:{PW}", "tool --user=admin:Hu****zz"),
        # --password and other options that take a credential
        (f"wget --user=admin --password={PW} https://x", "--user=admin --password=Hu****zz https"),
        (f"wget --http-password {PW} https://x", "wget --http-password Hu****zz https://x"),
        ("mysql --password=secret db", "mysql --password=s****t db"),
        (f"mysql --password '{PW}' db", "mysql --password 'Hu****zz' db"),
        (f"cli login --pass {PW}", "cli login --pass Hu****zz"),
        ("gh-release --token abc123def456", "gh-release --token ab****56"),
        ("tool --api-key=abc123def456 run", "tool --api-key=ab****56 run"),
        ("tool --api_key abc123def456", "tool --api_key ab****56"),
        ("gpg --batch --passphrase 'correct horse' -d f", "--passphrase 'co****se' -d f"),
        ("kubectl --token=abcdef get pods", "kubectl --token=a****f get pods"),
        ("terraform -token=abc123def456 x", "terraform -token=ab****56 x"),
        (
            f'subprocess.run(["deploy", "--password", "{PW}", "--api-key", "abc123def456"])',
            'subprocess.run(["deploy", "--password", "Hu****zz", "--api-key", "ab****56"])',
        ),
        # mysql -pPASSWORD (attached only), sshpass -p, openssl pass:
        (f"mysql -h db -uroot -p{PW} shop", "mysql -h db -uroot -pHu****zz shop"),
        ("mysqldump -u root -p'two words' shop > x.sql", "mysqldump -u root -p't****s' shop"),
        (f'subprocess.run(["mariadb", "-p{PW}"])', 'subprocess.run(["mariadb", "-pHu****zz"])'),
        (f"pg_dump db | mysql -u root -p{PW} db", "pg_dump db | mysql -u root -pHu****zz db"),
        (f"sshpass -p '{PW}' ssh deploy@host", "sshpass -p 'Hu****zz' ssh deploy@host"),
        (f"sshpass -p{PW} scp f host:", "sshpass -pHu****zz scp f host:"),
        (f"openssl rsa -passin pass:{PW} -in k.pem", "openssl rsa -passin pass:Hu****zz -in k"),
        # Authorization headers
        (
            'curl -H "Authorization: Bearer abcdef123456789" https://x',
            'curl -H "Authorization: Bearer ab****89" https://x',
        ),
        (
            "curl -H 'Authorization: Basic YWRtaW46cGFzcw==' https://x",
            "curl -H 'Authorization: Basic YW****==' https://x",
        ),
        (
            f'curl --header "Authorization: Bearer {PW}" https://x',
            'curl --header "Authorization: Bearer Hu****zz" https://x',
        ),
        # a password or token variable in a command's environment, a Dockerfile, a .env file
        ("PGPASSWORD=secret psql -h db", "PGPASSWORD=s****t psql -h db"),
        (f"MYSQL_PWD={PW} mysql shop", "MYSQL_PWD=Hu****zz mysql shop"),
        (
            "DB_PASSWORD=hunter2 GITHUB_TOKEN=abc ./deploy.sh",
            "DB_PASSWORD=h****2 GITHUB_TOKEN=****",
        ),
        (f"export REDIS_PASS='{PW}'", "export REDIS_PASS='Hu****zz'"),
        (f"ENV API_KEY={PW}", "ENV API_KEY=Hu****zz"),
        (
            f'subprocess.call("PGPASSWORD={PW} pg_dump db", shell=True)',
            'subprocess.call("PGPASSWORD=Hu****zz pg_dump db", shell=True)',
        ),
    ],
)
def test_credentials_on_a_command_line_are_masked(text: str, expected: str) -> None:
    redacted = redact_text(text)
    assert expected in redacted
    assert redact_text(redacted) == redacted
    assert redact_text(text, filename="deploy.py") == redacted
    assert PW not in redacted and "abc123def456" not in redacted


def test_a_command_line_password_is_masked_as_a_url_password_is() -> None:
    password = "S3cr3t-Pa55w0rd!x"
    url = redact_text(f"https://admin:{password}@db.example.com/")
    cli = redact_text(f"curl -u admin:{password} https://db.example.com/")
    assert url == "https://admin:S3****!x@db.example.com/"
    assert cli == "curl -u admin:S3****!x https://db.example.com/"
    assert redact_text(f"curl --user admin:{password} x") == "curl --user admin:S3****!x x"


@pytest.mark.parametrize(
    "text",
    [
        # short options of other commands
        "ls -u",
        "sort -u names.txt",
        "sort -u a:b2c",
        "git push -u origin main",
        "python -u run.py",
        "mkdir -p /tmp/x",
        "mkdir -pv build",
        "cp -p a:b2 c",
        "mysql -u root -p shop",
        "mysql -h db -P 3306 -u root -p",
        "curl https://x.example && mkdir -pfoo",
        "docker run -u 1000:1000 img",
        "docker run --user 1000:1000 img",
        "docker run --user app:staff img",
        "curl https://x && docker run -u 1000:1000 img",
        "tool -u C:\\Users\\x",
        "tool --user http://host/path",
        # options named like credentials that take none, or take something else
        '"--user-agent"',
        'parser.add_argument("--user-agent", default="secperf")',
        "curl --user-agent 'Mozilla/5.0 (X11)' https://x",
        "curl -u admin https://x",
        "curl -u admin: https://x",
        'parser.add_argument("--password", help="the password")',
        'parser.add_argument("--token", "-t", required=True)',
        'click.option("--api-key", "api_key", envvar="API_KEY")',
        "docker login --password-stdin",
        "docker login -u admin --password-stdin < pw.txt",
        "ansible-playbook --ask-pass site.yml",
        "psql --no-password -h db",
        "tool --token-file /run/secrets/token",
        "use --token instead of --password",
        "Pass --password or --token.",
        "openssl rsa -passin env:KEY_PASS -in k.pem",
        # code that builds the value rather than holding it
        "password = get_password()",
        'cmd = "mysql --password " + pw',
        'cmd = f"mysql --password={pw}"',
        'cmd = "curl -u %s:%s" % (user, pw)',
        'cmd = "curl -u {}:{}".format(user, pw)',
        'cmd = ["curl", "-u", f"{user}:{pw}", url]',
        "curl -u $USER:$PASS https://x",
        'curl -u "${USER}:${PASS}" https://x',
        'curl -H "Authorization: Bearer $TOKEN" https://x',
        "curl -H 'Authorization: Bearer ${{ secrets.TOKEN }}' https://x",
        "mysql -p$MYSQL_PASSWORD shop",
        'sshpass -p "$PW" ssh host',
        "sshpass -e ssh host",
        "tool --password=<your-password>",
        "tool --password ...",
        "PGPASSWORD=$(cat /run/secrets/pg) psql",
        'PGPASSWORD="$PGPASS" psql',
        "GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}",
        "connect(API_TOKEN=token)",
        "f(DB_PASSWORD=settings.DB_PASSWORD, x=1)",
        # variables that do not hold a credential
        "PWD=/tmp make",
        "BYPASS=1 make",
        "REQUIRE_PASSWORD=true run",
        "MAX_TOKENS=100",
        "PASSWORD_MIN_LENGTH=12",
    ],
)
def test_command_line_look_alikes_are_left_alone(text: str) -> None:
    assert redact_text(text) == text
    assert redact_text(text, filename="run.py") == text


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
        f"{before} curl -u admin:{secret} {after}",
        f"{before} mysql --password={secret} {after}",
        f"{before} PGPASSWORD={secret} {after}",
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
