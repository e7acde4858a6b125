"""Credentials written in a URL (``https://user:password@host/...``), sent as HTTP Basic.

urllib does not authenticate with a URL's user and password: it reads
``user:password@host`` as a host and a port, and fails. curl, Prometheus'
``basic_auth`` and Alertmanager's receivers send them as an ``Authorization:
Basic`` header instead; secperf's HTTP clients (notifiers, scrapes, the OSV
API) do the same through ``without_credentials``.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit, urlunsplit


def without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its ``user:password@``, and the header that carries them.

    A URL without credentials comes back as it is, with no header. The user
    and password are percent-decoded (``p%40ss`` is ``p@ss``), as curl does.
    Raises ValueError for a URL ``urlsplit`` cannot read.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, {}
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    header = {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"}
    return urlunsplit(parts._replace(netloc=host)), header
