"""`secperf config show` and `config check` never print a secret a URL carries.

A real config file, the real command line: the password of a URL and the
value of every query parameter (a webhook's token, a store's password, a
bus's token) are masked; the parameters' names stay, to tell URLs apart.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from secperf.config.units import MASK
from support.cli import run_cli

WEBHOOK_TOKEN = "QueryTok3nABC"
#: Every secret the config below holds; none may be printed.
SECRETS = (WEBHOOK_TOKEN, "hookPw9", "storePw9", "StoreQ7x", "natsPw9", "BusTok7x", "PromTok7x")

CONFIG = f"""\
[store]
url = "postgresql://u:storePw9@db.example.com/secperf?sslmode=require&password=StoreQ7x"

[bus]
url = "nats://n:natsPw9@nats.example.com:4222?token=BusTok7x"

[[alerts.notifiers]]
kind = "webhook"
url = "https://hook:hookPw9@hooks.example.com/x?token={WEBHOOK_TOKEN}"

[[monitor.prometheus.targets]]
name = "api"
url = "http://api.example.com/metrics?auth=PromTok7x"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "secperf.toml").write_text(CONFIG)
    return tmp_path


def test_config_show_masks_query_tokens_in_every_url(project: Path) -> None:
    result = run_cli(["config", "show"], cwd=project)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, secret
    shown = tomllib.loads(result.stdout)
    assert shown["alerts"]["notifiers"][0]["url"] == (
        f"https://hook:{MASK}@hooks.example.com/x?token={MASK}"
    )
    assert shown["store"]["url"] == (
        f"postgresql+psycopg://u:{MASK}@db.example.com/secperf?sslmode={MASK}&password={MASK}"
    )
    assert shown["bus"]["url"] == f"nats://n:{MASK}@nats.example.com:4222?token={MASK}"
    target = shown["monitor"]["prometheus"]["targets"][0]
    assert target["url"] == f"http://api.example.com/metrics?auth={MASK}"


def test_config_show_json_masks_them_too(project: Path) -> None:
    result = run_cli(["config", "show", "--format", "json"], cwd=project)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, secret
    data = json.loads(result.stdout)
    assert data["alerts"]["notifiers"][0]["url"].endswith(f"/x?token={MASK}")


def test_config_check_masks_the_store_and_bus_urls(project: Path) -> None:
    result = run_cli(["config", "check"], cwd=project)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, secret
    assert f"?sslmode={MASK}&password={MASK}" in result.stdout
    assert f"?token={MASK}" in result.stdout


REFUSED = f"""\
[[alerts.notifiers]]
kind = "webhook"
url = "ftp://hook:hookPw9@hooks.example.com/x?token={WEBHOOK_TOKEN}"

[[alerts.notifiers]]
kind = "alertmanager"
url = ["https://am:natsPw9@am.example.com/?token=BusTok7x"]

[[monitor.prometheus.targets]]
name = "api"
url = "file://u:storePw9@api.example.com/metrics?auth=PromTok7x"

[scan.deps]
osv_api_url = "gopher://osv.example.com/?key=StoreQ7x"
"""


def test_config_check_masks_a_refused_url(tmp_path: Path) -> None:
    """A URL refused (not http/https, or not a string) is echoed masked, key and all."""
    (tmp_path / "secperf.toml").write_text(REFUSED)
    result = run_cli(["config", "check"], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, secret
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    # Enough is shown to tell what is wrong and where: key, scheme, user, host, path.
    assert (
        "secperf.toml: alerts.notifiers[0].url: expected an http:// or https:// URL, got "
        f"'ftp://hook:{MASK}@hooks.example.com/x?token={MASK}'"
    ) in lines
    assert any(
        line.startswith("secperf.toml: alerts.notifiers[1].url: expected")
        and f"['https://am:{MASK}@am.example.com/?token={MASK}']" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("secperf.toml: monitor.prometheus.targets[0].url:")
        and f"'file://u:{MASK}@api.example.com/metrics?auth=" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("secperf.toml: scan.deps.osv_api_url:")
        and f"'gopher://osv.example.com/?key={MASK}'" in line
        for line in lines
    ), lines
