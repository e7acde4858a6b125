"""Keep secrets out of everything secperf stores: one redactor, redacted previews, keys.

``redact_text`` is the one redactor. Every snippet and message a scanner or an
import produces goes through it before the finding is fingerprinted, cached,
stored, published or printed: it finds secrets in the text with the very
detect-secrets plugins the ``secrets`` scanner runs (behind the same needle
prefilter) plus a few known formats those plugins miss (the body of a PEM or
PuTTY private key, credentials in any URL, fine-grained GitHub tokens, bearer
tokens, unquoted ``KEY=value`` assignments, credentials on a command line such
as ``curl -u user:password``, ``--password=...`` or ``PGPASSWORD=... psql``),
and replaces each value with its ``redact`` preview (``AKIA****MPLE``; a user
name before the password stays, ``admin:Hu****zz``). ``scrub_finding`` applies
it to every free text field of a finding, as a last check where findings leave
a scanner.

A secret found by the ``secrets`` scanner is reduced, inside the worker that
found it, to a preview and to a fingerprint keyed by ``secret_key``: scrypt
of the value under the project's salt, with the cost parameters recorded in
the baseline. The salt is kept in the committed baseline, so anyone holding
the repository can test guesses against a fingerprint; scrypt makes each guess
cost tens of milliseconds and 16 MiB of memory, where a plain or keyed hash
costs nanoseconds. No report prints the key itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from secperf.model import Finding

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

    ``redact("a-value-long-enough-to-show-both-ends")`` is ``"a-va****ends"``;
    secrets under 6 characters show nothing but the mask.
    """
    shown = shown_per_side(len(secret))
    if shown == 0:
        return MASK
    return f"{secret[:shown]}{MASK}{secret[-shown:]}"


@dataclass(frozen=True, slots=True)
class SecretKdf:
    """The scrypt cost parameters a secret's fingerprint key is derived with.

    Recorded in the baseline so that every machine derives the same keys, and
    so that a later secperf can raise the cost without breaking old baselines.
    """

    n: int = 2**14  # CPU/memory cost: 16 MiB and about 50 ms per derivation
    r: int = 8
    p: int = 1

    name = "scrypt"

    def as_json(self) -> dict[str, Any]:
        """The parameters as they are written into the baseline file."""
        return {"name": self.name, "n": self.n, "r": self.r, "p": self.p}

    @property
    def maxmem(self) -> int:
        """Memory scrypt may use: what these parameters need, with room to spare."""
        return 2 * 128 * self.r * self.n * self.p + 1024 * 1024


#: What new baselines and projects without a baseline use.
DEFAULT_SECRET_KDF = SecretKdf()

#: Limits on parameters read from a baseline file: a baseline must not make a
#: scan use gigabytes per secret, nor so little that guesses become cheap.
KDF_LIMITS = {"n": (2**10, 2**20), "r": (1, 32), "p": (1, 16)}


def secret_kdf_from_json(value: object) -> SecretKdf:
    """``SecretKdf`` from a baseline's ``secret_kdf`` object; ValueError naming the bad key."""
    if not isinstance(value, dict):
        raise ValueError(
            "expected an object such as {'name': 'scrypt', 'n': 16384, 'r': 8, 'p': 1}"
        )
    if value.get("name") != SecretKdf.name:
        raise ValueError(f"name: expected 'scrypt', got {value.get('name')!r}")
    numbers: dict[str, int] = {}
    for key, (low, high) in KDF_LIMITS.items():
        number = value.get(key)
        if not isinstance(number, int) or isinstance(number, bool) or not low <= number <= high:
            raise ValueError(f"{key}: expected an integer from {low} to {high}, got {number!r}")
        numbers[key] = number
    if numbers["n"] & (numbers["n"] - 1):
        raise ValueError(f"n: expected a power of two, got {numbers['n']}")
    return SecretKdf(numbers["n"], numbers["r"], numbers["p"])


def secret_key(salt: bytes, secret: str, kdf: SecretKdf = DEFAULT_SECRET_KDF) -> str:
    """What a secret's fingerprint is built on: scrypt of the value under ``salt``.

    The value (not its preview) enters, so a rotated secret that happens to
    keep the preview's ends is a new finding. scrypt is slow and memory-hard
    on purpose: the salt sits in the committed baseline, so anyone with the
    repository can test guesses against a fingerprint, and each guess must
    cost tens of milliseconds and 16 MiB instead of the nanoseconds of a plain
    or keyed hash. Raises TypeError or ValueError when the salt is not
    non-empty bytes.
    """
    check_salt(salt)
    derived = hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"),
        salt=bytes(salt),
        n=kdf.n,
        r=kdf.r,
        p=kdf.p,
        maxmem=kdf.maxmem,
        dklen=32,
    )
    return derived.hex()


def check_salt(salt: object) -> bytes:
    """Return ``salt`` when it is usable for ``secret_key``, else raise naming the problem."""
    if not isinstance(salt, bytes | bytearray):
        raise TypeError(f"secret hash salt must be bytes, got {type(salt).__name__}")
    if len(salt) == 0:
        raise ValueError("secret hash salt must not be empty")
    return bytes(salt)


# ----------------------------------------------------------------- the redactor

#: Plugins whose matches are not secret values: a public IP address is an
#: exposure hint, and the private-key plugin reports the ``BEGIN ... KEY``
#: marker, not the key (whose body ``_BLOCKS`` hide).
_NOT_VALUES = frozenset({"IPPublicDetector", "PrivateKeyDetector"})

#: Multi-line secrets: the body of a private key after its marker, up to its end.
_BLOCKS = (
    re.compile(r"(-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)(.*?)(?=-----END|\Z)", re.DOTALL),
    re.compile(r"(Private-Lines:[ \t]*\d+)(.*?)(?=Private-MAC:|\Z)", re.DOTALL),
)


@dataclass(frozen=True, slots=True)
class KnownFormat:
    """A credential format the detect-secrets plugins miss; ``value`` is its secret group."""

    name: str
    pattern: re.Pattern[str]
    value: int | str = 1
    #: The value must hold a digit or a symbol, which words and identifiers lack.
    needs_mixed: bool = False
    #: Whether a match (in the text) is a credential: its command, its value's shape.
    accept: Callable[[re.Match[str], str], bool] | None = None

    def found(self, match: re.Match[str], text: str) -> bool:
        """Whether ``match`` of ``pattern`` in ``text`` holds a credential to hide."""
        value = match.group(self.value)
        if not value:
            return False
        if self.needs_mixed and not _MIXED.search(value):
            return False
        return self.accept is None or self.accept(match, text)


# ------------------------------------------------ credentials on a command line
#
# As gitleaks' curl rules and detect-secrets' keyword rules do: an option that
# takes a credential, with its value attached (``--password=v``, ``-pv``),
# after a space (``--password v``) or as the next item of an argument list
# (``"--password", "v"``), quoted or bare. Only the value is hidden: a user
# name before ``:`` stays, as in URL credentials. Short options mean other
# things in other commands (``sort -u``, ``mkdir -p``), so they count only after
# the command they belong to, in the same command line.

#: How many lines a command may run over (``\`` continuations, argument lists).
_COMMAND_LINES = 5
_COMMAND_SEPARATOR = re.compile(r"&&|\|\||[;|]")
_CURL = re.compile(r"\bcurl\b")
_HTTPIE = re.compile(r"""(?:^|[\s"'\[(,/])(?:http|https|xh|xhs)(?=[\s"',])""")
_MYSQL = re.compile(r"\b(?:mysql|mariadb)[\w-]*")
_SSHPASS = re.compile(r"\bsshpass\b")


def _command_before(text: str, position: int) -> str:
    """The command ``position`` is in, up to ``position``.

    Its line and up to four lines before it (continued lines, a list of
    arguments), from the last ``;``, ``&&``, ``||`` or ``|`` before it.
    """
    start = position
    for _ in range(_COMMAND_LINES):
        start = text.rfind("\n", 0, start)
        if start < 0:
            start = 0
            break
    segment = text[start:position]
    separators = [m.end() for m in _COMMAND_SEPARATOR.finditer(segment)]
    return segment[separators[-1] :] if separators else segment


def _in_command(command: re.Pattern[str]) -> Callable[[re.Match[str], str], bool]:
    def accept(match: re.Match[str], text: str) -> bool:
        return _credential(match) and bool(command.search(_command_before(text, match.start())))

    return accept


#: Values that stand for a credential without being one: a shell or template
#: variable (``$PW``, ``${PW}``, ``{password}``, ``%s``), a placeholder
#: (``<password>``, ``...``), a file reference (``@file``), a mask (``****``).
_PLACEHOLDER = re.compile(r"[$%{<*@]|\.\.\.")
_NOT_VALUES_WORDS = frozenset(
    {"true", "false", "yes", "no", "on", "off", "0", "1", "none", "null", "nil", "stdin", "prompt"}
)


def _credential(match: re.Match[str]) -> bool:
    """Whether the ``value`` group of a command-line match is a literal credential."""
    value = match.group("value")
    return (
        bool(value)
        and not _PLACEHOLDER.match(value)
        and value.lower() not in _NOT_VALUES_WORDS
        and bool(re.search(r"[A-Za-z0-9]", value))
    )


#: A bare word after ``--option `` that may be the value: not a plain word of
#: prose (``use --token instead``): it holds a digit or symbol, or a capital
#: after its first letter.
_VALUE_LIKE = re.compile(r"[^A-Za-z]|.[A-Z]")


def _option_value(match: re.Match[str], text: str) -> bool:
    """``--password v``: v is a credential, not the next option or a word of prose."""
    value = match.group("value")
    if not _credential(match) or value.startswith(("pass:", "env:", "file:", "fd:")):
        return False  # openssl's -pass forms: "pass:" is matched by its own format
    flag = match.group("flag").lstrip("-").replace("-", "_").lower()
    if value.replace("-", "_").lower() in (flag, flag.rsplit("_", 1)[-1]):
        return False  # click's option("--api-key", "api_key"): the parameter's name
    if match.group("eq") is None:
        if value.startswith("-"):
            return False  # the next option
        core = value.rstrip(".,;:!?)]}")
        if match.group("q") is None and not _VALUE_LIKE.search(core):
            return False
    return True


def _user_password(match: re.Match[str], text: str) -> bool:
    """``-u user:password``: after curl or httpie; ``--user`` also elsewhere with a password
    mixing letters and digits or symbols.

    ``sort -u``, ``docker run -u 1000:1000`` and ``--user app:staff`` are not credentials.
    """
    user, value = match.group("user"), match.group("value")
    if not _credential(match) or (user.isdigit() and value.isdigit()) or value.startswith("/"):
        return False  # uid:gid, a URL or a path
    command = _command_before(text, match.start())
    if _CURL.search(command) or _HTTPIE.search(command):
        return True
    return match.group("flag").startswith("--") and bool(
        re.search(r"[A-Za-z]", value) and re.search(r"[^A-Za-z_.\-]", value)
    )


def _token_user(match: re.Match[str], text: str) -> bool:
    """``curl -u TOKEN:``: an API key as the user name, with no password."""
    value = match.group("value")
    return (
        len(value) >= 12
        and bool(re.search(r"[A-Za-z]", value) and re.search(r"\d", value))
        and _in_command(_CURL)(match, text)
    )


#: Between an option and its value: ``=`` (then anything is a value), spaces,
#: or the end of one item of an argument list and the start of the next.
_SEP = r"""(?:(?P<eq>=)|[ \t]+|["'][ \t]*,\s*(?=\\?["']))"""
#: A value: quoted (up to its closing quote, which may be escaped inside a
#: string of code) or bare (up to the next space or quote).
_QUOTE = r"""(?P<q>\\?["'])?"""
_QUOTED_OR_BARE = r"""(?(q)[^\s"'\\](?:(?!(?P=q))[^\n])*|[^\s"'`\\][^\s"'`]*)"""
_VALUE = _QUOTE + "(?P<value>" + _QUOTED_OR_BARE + ")"
#: ``user:password``, quoted or bare; the user name stays.
_USER_PASSWORD = (
    _QUOTE + r"""(?P<user>[^\s"'`:\\]*):""" + r"""(?P<value>(?(q)(?:(?!(?P=q))[^\n])+|[^\s"'`]+))"""
)
#: Options that take a password or token (``--password``, ``--db-password``,
#: ``--api-key``, ``-token``), not those that ask for one or take a file.
_SECRET_OPTION = (
    r"(?P<flag>--?(?!(?:no|ask|ask-become|ask-vault|prompt|show|print|generate|reset|use"
    r"|skip|with|without|require|allow|disable|enable)[-_])"
    r"(?:[a-z0-9]+[-_])*(?:password|passwd|pass|pwd|passphrase|token|api[-_]?key|apikey"
    r"|secret[-_]?key|access[-_]?key|auth[-_]?key|client[-_]?secret))(?![\w-])"
)
#: ``NAME=value`` for a variable that holds a password or token, in the
#: environment of a command (``PGPASSWORD=v psql``), a Dockerfile or a .env file.
_SECRET_VARIABLE = r"(?<![\w$.\-])(?P<name>[A-Z][A-Z0-9_]*)="
_SECRET_NAME = re.compile(
    r"[A-Z0-9_]*(?:PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|SECRET_?KEY|ACCESS_?KEY|AUTH_?KEY)"
    r"|(?:[A-Z][A-Z0-9]*_)+(?:PASS|PWD)"
)
_VARIABLE_VALUE = (
    r"""(?P<q>["'])?(?P<value>(?(q)[^\s"'](?:(?!(?P=q))[^\n])*"""
    r"""|[^\s"'`;&|()<>\[\]{}\\]*[^\s"'`;&|()<>\[\]{}\\,]))(?(q)(?P=q)|(?=[\s"'`;&|]|$))"""
)

COMMAND_LINE_FORMATS: tuple[KnownFormat, ...] = (
    KnownFormat(
        "curl user:password",
        re.compile(
            r"(?<![\w-])(?P<flag>-[uU]|--(?:proxy-)?user(?=[= \t\"',]))(?:"
            + _SEP
            + ")?"
            + _USER_PASSWORD
        ),
        value="value",
        accept=_user_password,
    ),
    KnownFormat(
        "curl API key as user",
        re.compile(
            r"""(?<![\w-])(?:-u(?:[ \t]+|["'][ \t]*,\s*)?|--user(?:[ \t]+|=|["'][ \t]*,\s*))"""
            r"""\\?["']?(?P<value>[A-Za-z0-9_\-]+):(?=\\?["'\s]|$)"""
        ),
        value="value",
        accept=_token_user,
    ),
    KnownFormat(
        "httpie user:password",
        re.compile(r"(?<![\w-])(?P<flag>-a|--auth)(?:" + _SEP + ")" + _USER_PASSWORD),
        value="value",
        accept=lambda match, text: (
            _user_password(match, text)
            and bool(_HTTPIE.search(_command_before(text, match.start())))
        ),
    ),
    KnownFormat(
        "password option",
        re.compile(r"(?<![\w-])" + _SECRET_OPTION + _SEP + _VALUE),
        value="value",
        accept=_option_value,
    ),
    # mysql -pPASSWORD: only attached (``-p db`` asks for the password and
    # names a database), and only in a mysql or mariadb command.
    KnownFormat(
        "mysql -p",
        re.compile(
            r"(?<![\w-])-p"
            + _QUOTE
            + r"""(?P<value>(?(q)[^\s"'\\](?:(?!(?P=q))[^\n])*|[^\s"'`\\\-][^\s"'`]*))"""
        ),
        value="value",
        accept=_in_command(_MYSQL),
    ),
    KnownFormat(
        "sshpass -p",
        re.compile(r"(?<![\w-])-p(?:[ \t]+|[\"'][ \t]*,\s*(?=\\?[\"']))?" + _VALUE),
        value="value",
        accept=lambda match, text: (
            not match.group("value").startswith("-") and _in_command(_SSHPASS)(match, text)
        ),
    ),
    KnownFormat(
        "openssl pass:",
        re.compile(
            r"""(?<![\w-])-pass(?:in|out)?(?:[ \t]+|["'][ \t]*,\s*)\\?["']?pass:"""
            r"""(?P<value>[^\s"'`\\]+)"""
        ),
        value="value",
        accept=lambda match, text: _credential(match),
    ),
    KnownFormat(
        "secret variable",
        re.compile(_SECRET_VARIABLE + _VARIABLE_VALUE),
        value="value",
        accept=lambda match, text: (
            bool(_SECRET_NAME.fullmatch(match.group("name"))) and _credential(match)
        ),
    ),
)


KNOWN_FORMATS: tuple[KnownFormat, ...] = (
    # Any length, and the whole token: the plugin wants exactly 36 characters
    # after the prefix and reports the prefix alone as the value. A prefix
    # glued to a letter or digit is part of a word (``weighs_total_...``).
    KnownFormat("GitHub token", re.compile(r"(?<![A-Za-z0-9])(gh[pousr]_[A-Za-z0-9_]{20,})")),
    KnownFormat(
        "GitHub fine-grained token", re.compile(r"(?<![A-Za-z0-9])(github_pat_[A-Za-z0-9_]{20,})")
    ),
    KnownFormat("Slack token", re.compile(r"(?<![A-Za-z0-9])(xox[abposr]-[A-Za-z0-9-]{10,})")),
    KnownFormat("Google API key", re.compile(r"(?<![A-Za-z0-9])(AIza[0-9A-Za-z_\-]{35})")),
    KnownFormat(
        "Stripe key", re.compile(r"(?<![A-Za-z0-9])([rs]k_(?:live|test)_[0-9A-Za-z]{16,})")
    ),
    KnownFormat("OpenAI key", re.compile(r"(?<![A-Za-z0-9])(sk-(?:proj-)?[A-Za-z0-9_\-]{20,})")),
    KnownFormat("npm token", re.compile(r"(?<![A-Za-z0-9])(npm_[A-Za-z0-9]{36})")),
    # The plugin refuses passwords holding sub-delimiters (p@ss!word); the
    # greedy group runs to the last "@" before the host.
    KnownFormat(
        "URL credentials",
        re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:'\"`]*:([^\s/?#'\"`]+)@[^\s@/?#'\"`]+"),
    ),
    # An Authorization header's value, quoted or after its scheme, is a
    # credential (a variable holding one, ``"Authorization": auth``, is not).
    KnownFormat(
        "Authorization header",
        re.compile(
            r"(?i)\bauthorization[\"']?[ \t]*[:=][ \t]*"
            r"(?:[\"'](?:(?:bearer|token|basic|digest)[ \t]+)?|(?:bearer|token|basic|digest)[ \t]+)"
            r"(?!(?:bearer|token|basic|digest)\b)([^\s\"',;]{6,})"
        ),
        # ``Bearer $TOKEN``, ``Bearer {token}``: a variable, not its value.
        accept=lambda match, text: not _PLACEHOLDER.match(match.group(1)),
    ),
    KnownFormat(
        "Bearer token",
        re.compile(r"(?i)\b(?:bearer|token|basic)[ \t]+([A-Za-z0-9._~+/\-]{16,}=*)"),
        needs_mixed=True,
    ),
    # Unquoted assignments (.env files, shell, messages): the plugin only reads
    # them in configuration file types.
    KnownFormat(
        "Secret assignment",
        re.compile(
            r"(?i)(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key"
            r"|private[_-]?key|credentials?)[A-Za-z0-9_.\-]*[\"']?[ \t]*[:=][ \t]*[\"']?"
            r"([A-Za-z0-9_\-+/=!@#$%^&*~]{8,})"
        ),
        needs_mixed=True,
    ),
    *COMMAND_LINE_FORMATS,
)

_MIXED = re.compile(r"[0-9\-+/=!@#$%^&*~]")

#: Strict mode (text from a rule about secrets): every quoted string, and long
#: words mixing letters and digits, may be the value.
_QUOTED = re.compile(r"""(["'`])((?:\\.|(?!\1)[^\\\n])+)\1""")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.]{16,}")


@dataclass(slots=True)
class _Detectors:
    plugins: list[Any]
    needles: Any  # secrets_prefilter.NeedleSet | None


_DETECTORS: list[_Detectors] = []


def _detectors() -> _Detectors:
    """The secrets scanner's plugins (built once per process) and their needles."""
    if not _DETECTORS:
        # Imported here: the secrets scanner imports this module for ``redact``.
        from secperf.security.scanners import secrets_prefilter
        from secperf.security.scanners.secrets import default_plugins

        plugins = [p for p in default_plugins() if type(p).__name__ not in _NOT_VALUES]
        _DETECTORS.append(_Detectors(plugins, secrets_prefilter.build_needles(plugins)))
    return _DETECTORS[0]


#: A value this short counts only where it stands alone, not inside a longer word.
_SHORT_VALUE = 8


def _detected_values(text: str, filename: str) -> set[str]:
    """Secret values the detect-secrets plugins find in ``text``, line by line."""
    engine = _detectors()
    lines = text.split("\n")
    if engine.needles is not None:
        numbers: Sequence[int] = engine.needles.candidate_line_numbers(text)
    else:
        numbers = range(1, len(lines) + 1)
    found: set[str] = set()
    for number in numbers:
        line = lines[number - 1]
        for plugin in engine.plugins:
            for secret in plugin.analyze_line(filename=filename, line=line, line_number=number):
                value = secret.secret_value
                if isinstance(value, str) and value:
                    found.add(value)
    return found


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    """Where ``value`` stands in ``text``: everywhere, or only alone when it is short."""
    pattern = re.escape(value)
    if len(value) < _SHORT_VALUE:
        pattern = f"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])"
    return [m.span() for m in re.finditer(pattern, text)]


def _hide_block(match: re.Match[str]) -> str:
    body = match.group(2)
    if not body.strip() or body.strip() == MASK:
        return match.group(0)
    return match.group(1) + ("\n" + MASK + "\n" if "\n" in body else MASK)


def redact_text(text: str, *, filename: str = "", strict: bool = False) -> str:
    """``text`` with every secret value in it replaced by its ``redact`` preview.

    ``filename`` (the file a snippet comes from) picks the keyword rules of its
    file type, as the secrets scanner does; messages leave it empty. ``strict``
    is for text from a rule that is about secrets: every quoted string and
    every long word mixing letters and digits is treated as a value too.
    Redacting twice gives what redacting once gave.
    """
    if not text:
        return text
    for block in _BLOCKS:
        text = block.sub(_hide_block, text)
    spans: list[tuple[int, int]] = []
    for value in _detected_values(text, filename):
        spans += _occurrences(text, value)
    for known in KNOWN_FORMATS:
        for match in known.pattern.finditer(text):
            if known.found(match, text):
                spans.append(match.span(known.value))
    if strict:
        spans += [m.span(2) for m in _QUOTED.finditer(text)]
        for match in _TOKEN.finditer(text):
            word = match.group(0)
            if "/" in word and not re.search(r"\d", word):
                continue  # a path such as src/app/settings.py
            if re.search(r"[A-Za-z]", word) and re.search(r"\d", word):
                spans.append(match.span())
    if not spans:
        return text
    # A preview found again (a keyword rule reading ``"ab****yz"``, a URL rule
    # reading the ``p@`` left of a mask) stays as it is, so that redacting twice
    # gives what redacting once gave.
    previews = [
        (m.start() - MAX_SHOWN_PER_SIDE, m.end() + MAX_SHOWN_PER_SIDE)
        for m in re.finditer(re.escape(MASK), text)
    ]
    kept = sorted(
        (start, end)
        for start, end in spans
        if end > start and not any(lo <= start and end <= hi for lo, hi in previews)
    )
    merged: list[list[int]] = []
    for start, end in kept:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    position = 0
    for start, end in merged:
        out += [text[position:start], redact(text[start:end])]
        position = end
    out.append(text[position:])
    return "".join(out)


def redact_optional(text: str | None, *, filename: str = "", strict: bool = False) -> str | None:
    """``redact_text`` for a field that may be None."""
    if text is None:
        return None
    return redact_text(text, filename=filename, strict=strict)


def _scrub_value(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_value(item, scrub) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(item, scrub) for item in value)
    return value


def scrub_finding(finding: Finding) -> Finding:
    """``finding`` with its message, snippet, help URL and property strings redacted.

    Scanners redact what they build before fingerprinting it; this is the last
    check where findings leave a scanner, so a scanner that forgot cannot leak.
    Returns the same object when nothing needed hiding.
    """
    message = redact_text(finding.message)
    snippet = redact_optional(finding.snippet, filename=finding.path)
    help_url = redact_optional(finding.help_url)
    properties = _scrub_value(finding.properties, redact_text)
    if (
        message == finding.message
        and snippet == finding.snippet
        and help_url == finding.help_url
        and properties == finding.properties
    ):
        return finding
    return dataclasses.replace(
        finding, message=message, snippet=snippet, help_url=help_url, properties=properties
    )


# ----------------------------------------------------------------- log records


def install_log_redaction() -> None:
    """Make every log record pass the redactor when it is created (idempotent).

    Scanners and the validator log what went wrong with a file, and an
    exception's text may quote the line that held a secret; a log line is
    printed or shipped as surely as a report. The message (with its arguments)
    and any traceback are redacted once, before any handler formats them.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
            redacted = redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, None
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = redact_text(_FORMATTER.formatException(record.exc_info))
        except Exception:  # a log line must never take the program down
            record.msg, record.args = "[log message withheld: it could not be redacted]", None
            record.exc_info, record.exc_text = None, None
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_FORMATTER = logging.Formatter()
