"""Where the tests find the repository, their fixture files and shared/."""

from __future__ import annotations

from pathlib import Path

#: The test tree (tests/).
TESTS = Path(__file__).resolve().parent.parent
#: The repository's root.
REPO = TESTS.parent
#: Fixture files: sample projects, SARIF logs, benchmark results, OSV data.
FIXTURES = TESTS / "fixtures"
#: The reference data beside the clone (CI lays shared/ next to it).
SHARED = REPO.parent / "shared"
#: The official SARIF 2.1.0 schema.
SARIF_SCHEMA = SHARED / "schemas" / "sarif-schema-2.1.0.json"
