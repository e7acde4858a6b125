"""How a user writes plain values in the config: durations and sizes with units, and the
display helpers for values that must not be shown as written (URLs with passwords or
tokens) or that decide a default (whether a host is loopback). No pydantic here.
"""

from __future__ import annotations

import ipaddress
import re

#: What a secret is shown as, in masked URLs and exported config.
MASK = "********"

_DURATION_UNITS_MS: dict[str, float] = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_EXAMPLES = "'500ms', '15s', '5m', '24h' or '30d'"


def parse_duration_ms(text: str) -> int:
    """Parse a duration such as ``"500ms"``, ``"15s"``, ``"1h30m"`` or ``"30d"`` to milliseconds.

    A bare number is refused (is ``30`` seconds or milliseconds?) except ``"0"``.
    Raises ValueError naming the accepted forms.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as {DURATION_EXAMPLES}")
    stripped = text.strip()
    if stripped == "0":
        return 0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS_MS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(stripped):
        raise ValueError(
            f"invalid duration {text!r}; use a number with a unit (ms, s, m, h, d, w) "
            f"such as {DURATION_EXAMPLES}"
        )
    return round(total)


def parse_duration_s(text: str) -> float:
    """Parse a duration (see ``parse_duration_ms``) to seconds."""
    return parse_duration_ms(text) / 1000.0


def format_duration_ms(ms: int) -> str:
    """The shortest exact duration string for ``ms`` (``300000`` -> ``"5m"``)."""
    if ms == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_DURATION_UNITS_MS[unit])
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$")


def parse_size_bytes(value: str | int) -> int:
    """Parse a size such as ``"512KB"`` (1000-based) or ``"1MiB"`` (1024-based) to bytes.

    A plain non-negative integer is taken as bytes. Raises ValueError otherwise.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as '512KB' or '1MiB', not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            unit = match.group(2).lower() or "b"
            if unit in _SIZE_UNITS:
                return round(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(
        f"invalid size {value!r}; use bytes or a number with a unit "
        "(B, KB, MB, GB, KiB, MiB, GiB) such as '512KB' or '1MiB'"
    )


def format_size_bytes(size: int) -> str | int:
    """The shortest exact size for ``size`` (``1048576`` -> ``"1MiB"``), or the bytes."""
    if size == 0:
        return 0
    for unit in ("TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def mask_url(url: str) -> str:
    """``url`` for display: its password and every query parameter's value masked.

    ``https://hook:pw@host/x?token=abc&v=2`` shows as
    ``https://hook:********@host/x?token=********&v=********``: the user name,
    host, path and the parameters' names stay, to tell URLs apart; a token can
    ride in any parameter, so no value is shown (as Grafana shows data-source
    URLs). A parameter without ``=`` may itself be a secret and is masked whole.
    Plain string work, as ``urlsplit`` splits (the fragment after the first
    ``#``, the query after the first ``?``, the authority after ``//`` up to the
    next ``/``): it cannot fail, whatever the text, and changes nothing else.
    """
    rest, hash_mark, fragment = url.partition("#")
    rest, question_mark, query = rest.partition("?")
    if question_mark:
        query = "&".join(_mask_parameter(p) if p else p for p in query.split("&"))
    return _mask_password(rest) + question_mark + query + hash_mark + fragment


def _mask_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    return f"{name}={MASK}" if equals else MASK


_AUTHORITY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")


def _mask_password(text: str) -> str:
    """``text`` (a URL without query or fragment) with the password of its authority masked."""
    start = _AUTHORITY.match(text)
    if start is None:
        return text
    end = text.find("/", start.end())
    end = len(text) if end == -1 else end
    authority = text[start.end() : end]
    userinfo, at, host = authority.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return text
    return f"{text[: start.end()]}{user}:{MASK}@{host}{text[end:]}"


#: What a hidden URL path (and query) shows as, after ``scheme://host[:port]``.
HIDDEN_PATH = "/…"


def mask_url_path(url: str) -> str:
    """``url`` shown as ``scheme://host[:port]`` only: no user, password, path or query.

    For the URLs whose path is the secret (a chat webhook's
    ``https://hooks.slack.com/services/T000/B000/XXXX``), which ``mask_url``
    would show: anything after the host shows as ``/…``
    (``https://hooks.slack.com/…``); the host tells which receiver it is. Text
    without ``//`` after its scheme has no host to show and is ``…`` whole.
    String work, like ``mask_url``: it cannot fail.
    """
    start = _AUTHORITY.match(url)
    if start is None:
        return "…" if url else url
    end = _authority_end(url, start.end())
    host = url[start.end() : end].rpartition("@")[2]
    rest = url[end:]
    return f"{url[: start.end()]}{host}{HIDDEN_PATH if rest not in ('', '/') else rest}"


def scrub_url(text: str, url: str, *, hide_path: bool = False) -> str:
    """``text`` (an error about ``url``, such as a library's message) without ``url``'s secrets.

    The whole URL shows as ``mask_url`` shows it (``mask_url_path`` with
    ``hide_path``); a part of it quoted on its own (the password and host in
    ``nonnumeric port: 'pw@host'``, the path and query in ``URL can't contain
    control characters. '/x?token=...'``) is masked too. A secret of 4 or
    more characters is masked wherever it appears; a shorter one only where
    the URL's own text surrounds it, so ``HTTP 500`` stays readable when a
    query says ``v=5``.
    """
    if not url:
        return text
    shown = mask_url_path(url) if hide_path else mask_url(url)
    in_context, anywhere = _url_secrets(url, hide_path)
    pieces = []
    for piece in text.split(url):
        for secret, masked in sorted(in_context, key=lambda pair: -len(pair[0])):
            piece = piece.replace(secret, masked)
        for secret in sorted(anywhere, key=len, reverse=True):
            if len(secret) >= 4:
                piece = piece.replace(secret, MASK)
        pieces.append(piece)
    return shown.join(pieces)


def _url_secrets(url: str, hide_path: bool) -> tuple[set[tuple[str, str]], set[str]]:
    """What of ``url`` must not show: (quoted part, what it shows as) pairs, and bare secrets."""
    from urllib.parse import unquote

    in_context: set[tuple[str, str]] = set()
    anywhere: set[str] = set()
    rest, _, fragment = url.partition("#")
    rest, question_mark, query = rest.partition("?")
    start = _AUTHORITY.match(rest)
    path = rest
    if start is not None:
        end = _authority_end(rest, start.end())
        authority, path = rest[start.end() : end], rest[end:]
        userinfo, at, host = authority.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if at and colon:
            anywhere.add(password)
            in_context.add((userinfo, MASK if hide_path else f"{user}:{MASK}"))
            # http.client reads what follows a ":" of user:pw@host as the port and
            # quotes it ("nonnumeric port: 'pw@host'").
            for index, char in enumerate(userinfo):
                if char == ":":
                    in_context.add((authority[index + 1 :], f"{MASK}@{host}"))
        elif at and hide_path:
            anywhere.add(user)
            in_context.add((authority, host))
    if question_mark:
        masked = "&".join(_mask_parameter(p) if p else p for p in query.split("&"))
        in_context.add((f"?{query}", f"?{MASK}" if hide_path else f"?{masked}"))
        for parameter in query.split("&"):
            name, equals, value = parameter.partition("=")
            if equals:
                in_context.add((parameter, f"{name}={MASK}"))
                anywhere.add(value)
            else:
                anywhere.add(parameter)
    if fragment:
        anywhere.add(fragment)
    if hide_path and path not in ("", "/"):
        selector = path + question_mark + query
        in_context.update({(path, HIDDEN_PATH), (selector, HIDDEN_PATH)})
        anywhere.add(path)
        anywhere.update(path.split("/"))
    anywhere |= {unquote(s) for s in anywhere}
    in_context |= {(unquote(s), m) for s, m in in_context}
    return {(s, m) for s, m in in_context if s and s != m}, anywhere - {""}


def _authority_end(text: str, start: int) -> int:
    """Where the authority that begins at ``start`` ends: the first ``/``, ``?`` or ``#``."""
    ends = [i for i in (text.find(c, start) for c in "/?#") if i != -1]
    return min(ends, default=len(text))


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
