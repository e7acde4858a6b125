"""secperf-waivers.toml: reading, validation errors, matching and expiry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from secperf.gates.waivers import (
    WaiverError,
    describe,
    is_expired,
    load_waivers,
    path_matches,
    today_utc,
)
from secperf.model import Finding, Severity
from support.factories import make_finding

VALID = """
[[finding]]
fingerprint = "0123456789abcdef"
owner = "alice"
reason = "fixture"
expires = 2026-10-01

[[finding]]
rule = "B101"
path = "**/test_*.py"
owner = "bob"
reason = "asserts in tests"
expires = "2027-01-31"

[[benchmark]]
name = "bench.py::test_*"
max_regression = "15%"
owner = "carol"
reason = "new validation"
expires = 2026-09-15
"""


def finding(rule: str = "B101", path: str = "tests/test_x.py", fp: str = "f" * 32) -> Finding:
    return make_finding(rule, path, Severity.LOW, fingerprint=fp, message="assert used", line=3)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secperf-waivers.toml"
    path.write_text(text)
    return path


def test_reads_every_kind_of_waiver(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID))
    by_fp, by_rule = waivers.findings
    assert by_fp.fingerprint == "0123456789abcdef" and by_fp.expires == date(2026, 10, 1)
    assert by_rule.rule == "B101" and by_rule.expires == date(2027, 1, 31)
    (bench,) = waivers.benchmarks
    assert bench.max_regression == pytest.approx(0.15)
    assert bench.matches("bench.py::test_parse") and not bench.matches("other.py::test_parse")


def test_missing_file_means_no_waivers(tmp_path: Path) -> None:
    waivers = load_waivers(tmp_path / "absent.toml")
    assert waivers.findings == () and waivers.benchmarks == () and waivers.source is None


def test_matching_by_fingerprint_prefix_and_by_rule_and_glob(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID))
    today = date(2026, 1, 1)
    assert waivers.for_finding(finding(fp="0123456789abcdef" + "0" * 16), today) is not None
    assert waivers.for_finding(finding(path="tests/unit/test_y.py"), today) is not None
    assert waivers.for_finding(finding(path="test_top.py"), today) is not None  # **/ may be empty
    assert waivers.for_finding(finding(path="app/main.py"), today) is None
    assert waivers.for_finding(finding(rule="B602"), today) is None


def test_expiry_is_on_the_date_itself(tmp_path: Path) -> None:
    waivers = load_waivers(write(tmp_path, VALID))
    waiver = waivers.findings[0]
    assert not is_expired(waiver.expires, date(2026, 9, 30))
    assert is_expired(waiver.expires, date(2026, 10, 1))
    assert describe(waiver, date(2026, 10, 2)) == "waiver expired on 2026-10-01 (owner: alice)"
    assert describe(waiver, date(2026, 1, 1)).startswith("waived until 2026-10-01 (owner: alice")
    assert today_utc(0) == date(1970, 1, 1)


def test_an_active_waiver_wins_over_an_expired_one(tmp_path: Path) -> None:
    entry = '[[finding]]\nrule = "B101"\npath = "*"\nowner = "{}"\nreason = "r"\nexpires = {}\n'
    text = entry.format("old", "2020-01-01") + entry.format("new", "2030-01-01")
    waiver = load_waivers(write(tmp_path, text)).for_finding(finding(), date(2026, 1, 1))
    assert waiver is not None and waiver.owner == "new"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[finding]\n", "not valid TOML"),
        ("[waivers]\n", "waivers: unknown table"),
        ("finding = 3\n", "finding: expected an array of tables"),
        (
            '[[finding]]\nrule = "B1"\nowner = "a"\nreason = "r"\nexpires = 2030-01-01\n',
            "finding[0].path: required with rule",
        ),
        (
            '[[finding]]\nowner = "a"\nreason = "r"\nexpires = 2030-01-01\n',
            "finding[0].fingerprint: required",
        ),
        (
            '[[finding]]\nfingerprint = "0123456789"\nreason = "r"\nexpires = 2030-01-01\n',
            "finding[0].owner: required key is missing",
        ),
        (
            '[[finding]]\nfingerprint = "0123456789"\nowner = "a"\nreason = "r"\n'
            'expires = "next year"\n',
            "finding[0].expires: expected a date such as 2026-10-01, got 'next year'",
        ),
        (
            '[[finding]]\nfingerprint = "0123456789"\nowner = "a"\nreason = "r"\n'
            "expires = 2030-01-01\nseverity = 'high'\n",
            "finding[0].severity: unknown key",
        ),
        (
            '[[finding]]\nfingerprint = "0123456789"\nrule = "B1"\nowner = "a"\nreason = "r"\n'
            "expires = 2030-01-01\n",
            "finding[0].rule: give either fingerprint, or rule and path",
        ),
        (
            '[[benchmark]]\nname = "b"\nmax_regression = "lots"\nowner = "a"\nreason = "r"\n'
            "expires = 2030-01-01\n",
            "benchmark[0].max_regression: expected a regression such as",
        ),
        (
            '[[benchmark]]\nname = "b"\nowner = "a"\nreason = "r"\nexpires = 2030-01-01\n',
            "benchmark[0].max_regression: required key is missing",
        ),
    ],
)
def test_malformed_files_name_the_file_entry_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_path_matches_crosses_directories() -> None:
    assert path_matches("tests/a/b.py", "tests/*")
    assert path_matches("tests/a/b.py", "tests/**")
    assert not path_matches("src/a.py", "tests/**")


def test_every_problem_of_the_file_at_once_naming_file_waiver_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[extra]\nx = 1\n"
        # finding[0]: no reason, a bad date, a rule without a path.
        '[[finding]]\nrule = "B101"\nowner = "x"\nexpires = "soon"\n'
        # finding[1]: fine; a good waiver between bad ones does not hide them.
        '[[finding]]\nfingerprint = "0123456789"\nowner = "a"\nreason = "r"\n'
        "expires = 2030-01-01\n"
        # finding[2]: an unknown key, an empty owner, a fingerprint too short.
        '[[finding]]\nfingerprint = "abc"\nowner = ""\nreason = "r"\nexpires = 2030-01-01\n'
        'colour = "red"\n'
        # benchmark[0]: a bad regression, no owner.
        '[[benchmark]]\nname = "bench::x"\nmax_regression = "lots"\nreason = "r"\n'
        "expires = 2030-01-01\n",
    )
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    error = caught.value
    assert error.problems == (
        f"{path}: extra: unknown table; expected [[finding]] or [[benchmark]] entries",
        f"{path}: finding[0].reason: required key is missing; expected a non-empty string"
        " [waiver of rule 'B101']",
        f"{path}: finding[0].expires: expected a date such as 2026-10-01, got 'soon'"
        " [waiver of rule 'B101']",
        f'{path}: finding[0].path: required with rule: a path glob such as "tests/**" (or "*")'
        " [waiver of rule 'B101']",
        f"{path}: finding[2].colour: unknown key; allowed keys: fingerprint, rule, path, owner,"
        " reason, expires [waiver of fingerprint 'abc']",
        f"{path}: finding[2].owner: expected a non-empty string, got '' [waiver of fingerprint"
        " 'abc']",
        f"{path}: finding[2].fingerprint: give at least 8 characters of the fingerprint"
        " [waiver of fingerprint 'abc']",
        f'{path}: benchmark[0].max_regression: expected a regression such as "15%" or 0.15,'
        " got 'lots' [waiver of benchmark 'bench::x']",
        f"{path}: benchmark[0].owner: required key is missing; expected a non-empty string"
        " [waiver of benchmark 'bench::x']",
    )
    assert str(error) == "\n".join(error.problems)


def test_entries_that_are_not_tables_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'finding = [1, "x"]\nbenchmark = 3\n')
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == (
        f"{path}: finding[0]: expected a table [[finding]]",
        f"{path}: finding[1]: expected a table [[finding]]",
        f"{path}: benchmark: expected an array of tables [[benchmark]]",
    )
