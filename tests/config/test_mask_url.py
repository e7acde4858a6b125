"""``mask_url``: what a URL shows of itself in ``config show``, ``config check`` and errors."""

from __future__ import annotations

import pytest

from secperf.config.units import MASK, mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memory://", "memory://"),
        ("sqlite:////srv/secperf.db", "sqlite:////srv/secperf.db"),
        ("https://h.example.com/x", "https://h.example.com/x"),
        ("https://u@h.example.com/x?", "https://u@h.example.com/x?"),
        ("nats://u:p@h:4222", f"nats://u:{MASK}@h:4222"),
        # An unescaped "@" in the password: the host is after the last one.
        ("postgresql+psycopg://u:p@ss@h/db", f"postgresql+psycopg://u:{MASK}@h/db"),
        ("https://h/x?a=1&&b=", f"https://h/x?a={MASK}&&b={MASK}"),
        # A parameter without "=" may be the secret itself.
        ("https://h/hook?S3cr3t", f"https://h/hook?{MASK}"),
        (
            "postgresql+psycopg://?host=h&password=p",
            f"postgresql+psycopg://?host={MASK}&password={MASK}",
        ),
        # Not a URL urlsplit accepts: masked all the same.
        ("http://[::1/x?token=t", f"http://[::1/x?token={MASK}"),
        # An "@" in the path is no password.
        ("https://h/p:q@r", "https://h/p:q@r"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
