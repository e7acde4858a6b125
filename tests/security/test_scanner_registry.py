"""The scanner registry: one entry per shipped scanner, each built from config."""

from __future__ import annotations

import pytest

from secperf.config import ScanConfig
from secperf.model import SCANNER_IDS
from secperf.security.factory import build_scanners
from secperf.security.scanners.registry import SCANNERS, BuildContext, get_spec


def test_every_scanner_id_has_one_entry_in_order() -> None:
    assert tuple(spec.id for spec in SCANNERS) == SCANNER_IDS


def test_each_entry_builds_the_scanner_it_names() -> None:
    ctx = BuildContext(scan=ScanConfig(), salt=b"salt")
    for spec in SCANNERS:
        assert spec.build(ctx).id == spec.id
        assert spec.description and "\n" not in spec.description


def test_build_scanners_follows_config_order_and_only() -> None:
    scan = ScanConfig(scanners=["secrets", "bandit"])
    assert [s.id for s in build_scanners(scan, b"salt")] == ["secrets", "bandit"]
    assert [s.id for s in build_scanners(scan, b"salt", only=["sarif"])] == ["sarif"]


def test_an_unknown_id_names_every_known_one() -> None:
    with pytest.raises(ValueError, match="expected bandit, secrets, deps, semgrep or sarif"):
        get_spec("trivy")
