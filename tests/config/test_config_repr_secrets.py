"""A config object in a log (``repr`` or ``str``) never shows a secret its URLs carry.

The config is read from a real file. The store and bus sections have always
masked their URL; notifiers, scrape targets and the OSV API URL do too. A
notifier's URL shows only ``scheme://host[:port]``: a chat webhook's secret
is its path.
"""

from __future__ import annotations

from pathlib import Path

from secperf.config import load_config
from secperf.config.units import MASK

SECRETS = ("hookPw9", "XXXXSECRET", "QueryTok3nABC", "amTok7x", "PromPw9", "PromTok7x", "OsvTok7x")

CONFIG = """\
[[alerts.notifiers]]
kind = "webhook"
url = "https://hook:hookPw9@hooks.slack.com/services/T000/B000/XXXXSECRET?token=QueryTok3nABC"

[[alerts.notifiers]]
kind = "alertmanager"
url = "http://127.0.0.1:9093/?token=amTok7x"

[[alerts.notifiers]]
kind = "log"

[[monitor.prometheus.targets]]
name = "api"
url = "http://scrape:PromPw9@api.example.com:9100/metrics?token=PromTok7x"

[scan.deps]
osv_api_url = "https://osv.example.com/?key=OsvTok7x"
"""


def test_repr_of_notifier_target_and_deps_config_masks_their_urls(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(CONFIG)
    config = load_config(project_dir=tmp_path).config
    webhook, alertmanager, log = config.alerts.notifiers
    (target,) = config.monitor.prometheus.targets
    shown = {
        "webhook": repr(webhook),
        "alertmanager": str(alertmanager),
        "log": repr(log),
        "target": repr(target),
        "deps": repr(config.scan.deps),
        "whole config": repr(config),
        "whole config, str": str(config),
    }
    for name, text in shown.items():
        for secret in SECRETS:
            assert secret not in text, (name, secret, text)
    assert "url='https://hooks.slack.com/…'" in shown["webhook"]
    assert "url='http://127.0.0.1:9093/…'" in shown["alertmanager"]
    assert "url=None" in shown["log"]
    target_url = f"http://scrape:{MASK}@api.example.com:9100/metrics?token={MASK}"
    assert f"url='{target_url}'" in shown["target"]
    assert f"osv_api_url='https://osv.example.com/?key={MASK}'" in shown["deps"]
    # The values themselves are untouched: only their display is masked.
    assert webhook.url is not None and webhook.url.endswith("?token=QueryTok3nABC")
    assert target.url.endswith("?token=PromTok7x")
