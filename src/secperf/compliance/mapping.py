"""CWE ids to OWASP Top 10 (2021) categories and to the CWE Top 25 (2024).

Data, not logic: each table is copied from its published source, never
inferred. A CWE outside every table is reported as unmapped, not guessed.

OWASP Top 10 (2021): the "List of Mapped CWEs" of each category page of the
OWASP Top 10 2021 (https://owasp.org/Top10/; source files
``2021/docs/A01_2021-Broken_Access_Control.md`` to
``2021/docs/A10_2021-Server-Side_Request_Forgery_(SSRF).md`` of
github.com/OWASP/Top10). MITRE publishes the same membership as the view
CWE-1344 "Weaknesses in OWASP Top Ten (2021)", whose categories CWE-1345
(A01) ... CWE-1356 (A10) hold these CWEs
(https://cwe.mitre.org/data/definitions/1344.html). Each CWE id sits in one
category of the 2021 list.

CWE Top 25: the 2024 list, MITRE's view CWE-1430
(https://cwe.mitre.org/top25/archive/2024/2024_cwe_top25.html), by rank.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Which edition of each list the tables hold (shown in the report).
OWASP_EDITION = "OWASP Top 10 (2021), MITRE view CWE-1344"
CWE_TOP25_EDITION = "CWE Top 25 (2024), MITRE view CWE-1430"


@dataclass(frozen=True, slots=True)
class OwaspCategory:
    """One OWASP Top 10 (2021) category and the CWE ids mapped to it."""

    id: str  # "A03"
    name: str
    mitre_category: int  # the CWE category id of MITRE's view CWE-1344
    cwes: frozenset[int]

    @property
    def label(self) -> str:
        """``A03:2021 - Injection``."""
        return f"{self.id}:2021 - {self.name}"


OWASP_2021: tuple[OwaspCategory, ...] = (
    OwaspCategory(
        "A01",
        "Broken Access Control",
        1345,
        frozenset(
            {
                22,
                23,
                35,
                59,
                200,
                201,
                219,
                264,
                275,
                276,
                284,
                285,
                352,
                359,
                377,
                402,
                425,
                441,
                497,
                538,
                540,
                548,
                552,
                566,
                601,
                639,
                651,
                668,
                706,
                862,
                863,
                913,
                922,
                1275,
            }
        ),
    ),
    OwaspCategory(
        "A02",
        "Cryptographic Failures",
        1346,
        frozenset(
            {
                261,
                296,
                310,
                319,
                321,
                322,
                323,
                324,
                325,
                326,
                327,
                328,
                329,
                330,
                331,
                335,
                336,
                337,
                338,
                340,
                347,
                523,
                720,
                757,
                759,
                760,
                780,
                818,
                916,
            }
        ),
    ),
    OwaspCategory(
        "A03",
        "Injection",
        1347,
        frozenset(
            {
                20,
                74,
                75,
                77,
                78,
                79,
                80,
                83,
                87,
                88,
                89,
                90,
                91,
                93,
                94,
                95,
                96,
                97,
                98,
                99,
                100,
                113,
                116,
                138,
                184,
                470,
                471,
                564,
                610,
                643,
                644,
                652,
                917,
            }
        ),
    ),
    OwaspCategory(
        "A04",
        "Insecure Design",
        1348,
        frozenset(
            {
                73,
                183,
                209,
                213,
                235,
                256,
                257,
                266,
                269,
                280,
                311,
                312,
                313,
                316,
                419,
                430,
                434,
                444,
                451,
                472,
                501,
                522,
                525,
                539,
                579,
                598,
                602,
                642,
                646,
                650,
                653,
                656,
                657,
                799,
                807,
                840,
                841,
                927,
                1021,
                1173,
            }
        ),
    ),
    OwaspCategory(
        "A05",
        "Security Misconfiguration",
        1349,
        frozenset(
            {
                2,
                11,
                13,
                15,
                16,
                260,
                315,
                520,
                526,
                537,
                541,
                547,
                611,
                614,
                756,
                776,
                942,
                1004,
                1032,
                1174,
            }
        ),
    ),
    OwaspCategory(
        "A06",
        "Vulnerable and Outdated Components",
        1352,
        frozenset({937, 1035, 1104}),
    ),
    OwaspCategory(
        "A07",
        "Identification and Authentication Failures",
        1353,
        frozenset(
            {
                255,
                259,
                287,
                288,
                290,
                294,
                295,
                297,
                300,
                302,
                304,
                306,
                307,
                346,
                384,
                521,
                613,
                620,
                640,
                798,
                940,
                1216,
            }
        ),
    ),
    OwaspCategory(
        "A08",
        "Software and Data Integrity Failures",
        1354,
        frozenset({345, 353, 426, 494, 502, 565, 784, 829, 830, 915}),
    ),
    OwaspCategory(
        "A09",
        "Security Logging and Monitoring Failures",
        1355,
        frozenset({117, 223, 532, 778}),
    ),
    OwaspCategory("A10", "Server-Side Request Forgery (SSRF)", 1356, frozenset({918})),
)

#: The 2024 CWE Top 25 by rank: (rank, CWE id, name).
CWE_TOP25_2024: tuple[tuple[int, int, str], ...] = (
    (1, 79, "Cross-site Scripting"),
    (2, 787, "Out-of-bounds Write"),
    (3, 89, "SQL Injection"),
    (4, 352, "Cross-Site Request Forgery (CSRF)"),
    (5, 22, "Path Traversal"),
    (6, 125, "Out-of-bounds Read"),
    (7, 78, "OS Command Injection"),
    (8, 416, "Use After Free"),
    (9, 862, "Missing Authorization"),
    (10, 434, "Unrestricted Upload of File with Dangerous Type"),
    (11, 94, "Code Injection"),
    (12, 20, "Improper Input Validation"),
    (13, 77, "Command Injection"),
    (14, 287, "Improper Authentication"),
    (15, 269, "Improper Privilege Management"),
    (16, 502, "Deserialization of Untrusted Data"),
    (17, 200, "Exposure of Sensitive Information to an Unauthorized Actor"),
    (18, 863, "Incorrect Authorization"),
    (19, 918, "Server-Side Request Forgery (SSRF)"),
    (20, 119, "Improper Restriction of Operations within the Bounds of a Memory Buffer"),
    (21, 476, "NULL Pointer Dereference"),
    (22, 798, "Use of Hard-coded Credentials"),
    (23, 190, "Integer Overflow or Wraparound"),
    (24, 400, "Uncontrolled Resource Consumption"),
    (25, 306, "Missing Authentication for Critical Function"),
)

_OWASP_BY_CWE: dict[int, OwaspCategory] = {
    cwe: category for category in OWASP_2021 for cwe in category.cwes
}
_TOP25_RANK: dict[int, int] = {cwe: rank for rank, cwe, _ in CWE_TOP25_2024}


def owasp_category(cwe: int | None) -> OwaspCategory | None:
    """The OWASP Top 10 (2021) category of ``cwe``, or None when the list maps it nowhere."""
    return None if cwe is None else _OWASP_BY_CWE.get(cwe)


def top25_rank(cwe: int | None) -> int | None:
    """The rank of ``cwe`` in the 2024 CWE Top 25, or None when it is not in the list."""
    return None if cwe is None else _TOP25_RANK.get(cwe)
