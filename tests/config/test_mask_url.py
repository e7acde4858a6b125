"""``mask_url``: what a URL shows of itself in ``config show``, ``config check`` and errors."""

from __future__ import annotations

import pytest

from secperf.config.units import MASK, mask_url, mask_url_path, scrub_url


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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/…"),
        ("https://hook:pw@hooks.example.com:8443/x?token=abc", "https://hooks.example.com:8443/…"),
        ("https://u@h.example.com?x=1#frag", "https://h.example.com/…"),
        ("http://127.0.0.1:9093", "http://127.0.0.1:9093"),
        ("http://127.0.0.1:9093/", "http://127.0.0.1:9093/"),
        ("http://[::1]:9093/api/v2/alerts", "http://[::1]:9093/…"),
        # No host to show: nothing is shown.
        ("hooks.slack.com/services/T000/B000/XXXXSECRET", "…"),
        ("", ""),
    ],
)
def test_mask_url_path(url: str, shown: str) -> None:
    assert mask_url_path(url) == shown


def test_scrub_url_masks_the_url_and_the_parts_a_library_quotes() -> None:
    url = "http://hook:hookPw9@127.0.0.1/x?token=QueryTok3nABC&v=5"
    # http.client reads "hookPw9@127.0.0.1" as the port of host "hook".
    text = "POST " + url + ": nonnumeric port: 'hookPw9@127.0.0.1'; HTTP 500"
    assert scrub_url(text, url) == (
        f"POST http://hook:{MASK}@127.0.0.1/x?token={MASK}&v={MASK}: "
        f"nonnumeric port: '{MASK}@127.0.0.1'; HTTP 500"
    )
    assert scrub_url(text, url, hide_path=True) == (
        f"POST http://127.0.0.1/…: nonnumeric port: '{MASK}@127.0.0.1'; HTTP 500"
    )


def test_scrub_url_masks_a_quoted_path_and_query() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET?token=a b"
    text = "URL can't contain control characters. '/services/T000/B000/XXXXSECRET?token=a b'"
    assert scrub_url(text, url) == (
        f"URL can't contain control characters. '/services/T000/B000/XXXXSECRET?token={MASK}'"
    )
    hidden = scrub_url(text, url, hide_path=True)
    assert hidden == "URL can't contain control characters. '/…'"
    # A secret of 4 or more characters is masked wherever it shows, even alone.
    assert scrub_url("segment XXXXSECRET", url, hide_path=True) == f"segment {MASK}"
    # A short one only in the URL's own words: "HTTP 500" stays.
    assert scrub_url("HTTP 500", "https://h/x?v=5") == "HTTP 500"
