"""What the store says about itself shows its URL as ``mask_url`` does: no password, no query value.

SQLAlchemy's ``hide_password`` leaves the query, where libpq takes a
``password`` or an ``sslpassword`` too. Real PostgreSQL (the server on this
machine, and a port nothing listens on), the real ``secperf store``
commands, and a real config file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from secperf.config.units import MASK
from secperf.store import Store
from secperf.store.engine import StoreTargetError, StoreUnavailableError, resolve_url
from secperf.store.sqlite_reader import NotReadable, open_read_only
from secperf.store.store import describe_target
from support.cli import run_cli
from support.services import free_port

SECRETS = ("StorePw9x", "StoreQ7x")


def with_secrets(url: str) -> str:
    """``url`` (a PostgreSQL store URL) with a password and a query value added."""
    parts = make_url(url)
    sep = "&" if parts.query else "?"
    with_password = parts.set(password="StorePw9x").render_as_string(hide_password=False)
    return f"{with_password}{sep}application_name=StoreQ7x"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def test_describe_target_masks_password_and_query() -> None:
    url = make_url("postgresql+psycopg://u:StorePw9x@db.example.com/secperf?sslpassword=StoreQ7x")
    assert describe_target(url) == (
        f"postgresql+psycopg://u:{MASK}@db.example.com/secperf?sslpassword={MASK}"
    )


def test_store_stats_names_a_postgresql_store_masked(tmp_path: Path, postgres_url: str) -> None:
    """The server trusts local connections: the password is carried, not needed."""
    url = with_secrets(postgres_url)
    result = run_cli(["store", "stats", "--store", url, "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_secret(result.stdout, result.stderr)
    shown = json.loads(result.stdout)["store"]
    host = make_url(postgres_url)
    assert shown.startswith(f"postgresql+psycopg://{host.username}:{MASK}@{host.host}:")
    # The schema parameter is the engine's own (taken off the URL); the rest is masked.
    assert shown.endswith(f"application_name={MASK}")


def test_an_unreachable_store_is_named_masked(tmp_path: Path) -> None:
    url = f"postgresql://u:StorePw9x@127.0.0.1:{free_port()}/secperf?sslpassword=StoreQ7x"
    with pytest.raises(StoreUnavailableError) as opening:
        Store.open(url)
    assert_no_secret(str(opening.value))
    assert str(opening.value).startswith(
        f"cannot open store postgresql+psycopg://u:{MASK}@127.0.0.1:"
    )
    result = run_cli(["store", "check", "--store", url], cwd=tmp_path)
    assert result.returncode == 2
    assert_no_secret(result.stdout, result.stderr)
    assert f"store postgresql+psycopg://u:{MASK}@127.0.0.1:" in result.stdout
    assert f"/secperf?sslpassword={MASK} (postgresql)" in result.stdout
    assert "problem: cannot query the database" in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u:StorePw9x@db.example.com/x?token=StoreQ7x", "backend 'mysql'"),
        ("postgresql://u:StorePw9x@db.example.com/x?schema=a-b&t=StoreQ7x", "schema"),
        ("postgresql://u:StorePw9x@db.example.com:port/x?t=StoreQ7x", "is not valid"),
    ],
)
def test_a_refused_store_url_is_named_masked(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(StoreTargetError, match=says) as refused:
        resolve_url(url)
    assert_no_secret(str(refused.value))
    assert f":{MASK}@db.example.com" in str(refused.value)
    result = run_cli(["store", "check", "--store", url], cwd=tmp_path)
    assert result.returncode == 2
    assert_no_secret(result.stdout, result.stderr)
    assert says in result.stderr


def test_the_fast_reader_names_a_postgresql_url_masked() -> None:
    url = "postgresql+psycopg://u:StorePw9x@db.example.com/secperf?sslpassword=StoreQ7x"
    with pytest.raises(NotReadable) as unreadable, open_read_only(url):
        pass
    assert str(unreadable.value) == (
        f"postgresql+psycopg://u:{MASK}@db.example.com/secperf?sslpassword={MASK}:"
        " not an existing SQLite file"
    )
