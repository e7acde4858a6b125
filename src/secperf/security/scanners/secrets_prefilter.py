"""A cheap test that tells which lines no detect-secrets plugin can match.

Most lines of most files hold nothing a secrets plugin could report, yet
detect-secrets runs every plugin's regexes and the line filters on each of
them. As gitleaks does with its rule keywords, we first look for *needles*:
for each plugin, a pattern that every match of that plugin must contain. A
line that holds no needle of any plugin cannot yield a finding, so it is
skipped; every other line goes through the unmodified plugins and filters,
which keeps the results exactly those of detect-secrets.

Each needle is derived from the plugin's own regexes, with the same character
classes and the same case-folding flags (``re.IGNORECASE`` with Unicode folds
``K`` to the Kelvin sign, so a needle must fold exactly as its regex does).
The high-entropy plugins only report quoted strings whose Shannon entropy
exceeds their limit, and a string of ``n`` characters has entropy at most
``log2(n)``; their needle is a quoted run of at least ``2**limit`` characters
of their charset. A plugin we hold no needle for disables the prefilter
altogether (``build_needle_pattern`` returns None), so a detect-secrets upgrade
that adds a plugin degrades to the exact, unfiltered scan rather than to
missed secrets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detect_secrets.plugins.keyword import DENYLIST as _KEYWORD_DENYLIST


@dataclass(frozen=True, slots=True)
class Needle:
    """What a plugin's match must contain: a regex, or a literal word (``literal``)."""

    pattern: str
    ignore_case: bool = False
    literal: bool = False


def _re(pattern: str) -> Needle:
    return Needle(pattern)


def _words(*words: str) -> list[Needle]:
    """Literal words matched case-insensitively (merged into one trie regex)."""
    return [Needle(w, ignore_case=True, literal=True) for w in words]


def _combos(*parts: Sequence[str]) -> list[str]:
    """Every concatenation of one choice per part: the literals of a regex like (a|b)(c|)."""
    out = [""]
    for choices in parts:
        out = [head + tail for head in out for tail in choices]
    return out


def _expand_optional_underscore(pattern: str) -> list[str] | None:
    """``api_?key`` -> [``apikey``, ``api_key``]; None for anything but letters and ``_?``."""
    if not re.fullmatch(r"(?:\w|_\?)+", pattern) or "?" in pattern.replace("_?", ""):
        return None
    pieces = pattern.split("_?")
    return _combos(*([pieces[0]], *[["" + p, "_" + p] for p in pieces[1:]]))


def _keyword_needles() -> list[Needle]:
    needles: list[Needle] = []
    for pattern in _KEYWORD_DENYLIST:
        literals = _expand_optional_underscore(pattern)
        if literals is None:
            needles.append(Needle(pattern, ignore_case=True))
        else:
            needles.extend(_words(*literals))
    return needles


_DASH = ("", "_", "-")
_CREDENTIAL_WORDS = ("key", "pwd", "pw", "password", "pass", "token")

#: Characters matching ``[a-zA-Z0-9_\-]`` under re.IGNORECASE, spelled out so the
#: needle can be searched case-sensitively (much faster).
_IBM_KEY_CHARS = r"a-zA-Z0-9_\-\u0130\u0131\u017f\u212a"

#: plugin class name -> needles. Every match of the plugin's regexes contains a
#: match of one of its needles, within one line. Needles that begin with a
#: literal are searched fastest, so some start at a later literal and check what
#: precedes it with a look-behind.
PLUGIN_NEEDLES: dict[str, list[Needle]] = {
    "ArtifactoryDetector": [_re(r"AKC[a-zA-Z0-9]{10}|AP[\dABCDEF][a-zA-Z0-9]{8}")],
    "AWSKeyDetector": [_re(r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}"), *_words("aws")],
    "AzureStorageKeyDetector": [_re(r"AccountKey=")],
    "BasicAuthDetector": [_re(r"://")],
    "CloudantDetector": _words(
        *_combos(("cloudant", "cl", "clou"), _DASH, ("api", ""), _CREDENTIAL_WORDS),
        "cloudant.com",
    ),
    "DiscordBotTokenDetector": [
        _re(r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}")
    ],
    "GitHubTokenDetector": [_re(r"gh(?:p|o|u|s|r)_")],
    "GitLabTokenDetector": [
        _re(r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-"),
        _re(r"GR1348941"),
    ],
    # The assignment needs a 44-character key; no keyword check is needed to be safe.
    "IbmCloudIamDetector": [_re(f"[{_IBM_KEY_CHARS}]{{44}}")],
    # Its keyword is secret[-_]?(access)?[-_]?key, which always contains "secret".
    "IbmCosHmacDetector": _words("secret"),
    "IPPublicDetector": [_re(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")],
    "JwtTokenDetector": [_re(r"eyJ")],
    # All keyword regexes contain a denylisted word; some are case-sensitive, a
    # case-insensitive needle covers both.
    "KeywordDetector": _keyword_needles(),
    "MailchimpDetector": [_re(r"-us[0-9]")],
    "NpmDetector": [_re(r":_authToken=")],
    "OpenAIDetector": [_re(r"T3BlbkFJ")],
    "PrivateKeyDetector": [
        _re(r"PRIVATE KEY"),
        _re(r"PuTTY-User-Key-File-2"),  # pragma: allowlist secret
    ],
    "PypiTokenDetector": [_re(r"pypi-AgE")],
    "SendGridDetector": [_re(r"SG\.")],
    "SlackDetector": _words(*_combos(("xox",), "abposr", ("-",)), "hooks.slack.com"),
    "SoftlayerDetector": _words(
        "softlayer", *_combos(("sl",), _DASH, ("api", ""), _DASH, _CREDENTIAL_WORDS)
    ),
    "SquareOAuthDetector": [_re(r"sq0csp-")],
    "StripeDetector": [_re(r"k_live_(?<=[rs]k_live_)")],
    "TelegramBotTokenDetector": [_re(r":(?<=\d{8}:)")],
    "TwilioKeyDetector": [_re(r"AC[a-z0-9]{32}|SK[a-z0-9]{32}")],
}

#: Plugins reporting quoted strings above an entropy limit (``charset``, ``entropy_limit``).
ENTROPY_PLUGINS = frozenset({"Base64HighEntropyString", "HexHighEntropyString"})


def entropy_min_length(limit: float) -> int:
    """The shortest string whose Shannon entropy can exceed ``limit`` bits, minus one.

    ``n`` characters have entropy at most ``log2(n)``, so a string needs more than
    ``2**limit`` characters; one less is kept as a margin against rounding.
    """
    bound: float = 2.0**limit
    return max(1, math.floor(bound))


def plugin_needles(plugin: object) -> list[Needle] | None:
    """The needles of one plugin instance, or None when we do not know the plugin."""
    name = type(plugin).__name__
    if name in ENTROPY_PLUGINS:
        charset = getattr(plugin, "charset", None)
        limit = getattr(plugin, "entropy_limit", None)
        if not isinstance(charset, str) or not isinstance(limit, int | float):
            return None
        run = f"[{re.escape(charset)}]{{{entropy_min_length(float(limit))},}}"
        return [Needle(f"['\"]{run}['\"]")]
    needles = PLUGIN_NEEDLES.get(name)
    return list(needles) if needles is not None else None


def trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, factored by common prefixes.

    Python's ``re`` tries every branch of an alternation at every position;
    sharing prefixes cuts that to a few branches. A word that has another word
    as a prefix is dropped: finding the shorter one is enough for a needle.
    """
    trie: dict[str, Any] = {}
    for word in sorted(set(words), key=len):
        node = trie
        for char in word:
            if "" in node:
                break
            node = node.setdefault(char, {})
        else:
            node.clear()
            node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(trie)


class NeedleSet:
    """The compiled needles of a set of plugins, searched over text or single lines.

    Needles other than words are each their own pattern, so that those beginning
    with a literal get ``re``'s fast literal search. Case-insensitive words go
    into one trie regex; on ASCII text (most source files) it is searched,
    case-sensitively and several times faster, in the lowercased text, which for
    ASCII matches exactly what ``re.IGNORECASE`` matches, at the same offsets.
    Non-ASCII text gets the ``re.IGNORECASE`` pattern, whose Unicode case
    folding (``K`` and the Kelvin sign, ``s`` and the long s) lowercasing alone
    would not reproduce.
    """

    def __init__(self, needles: Iterable[Needle]) -> None:
        words: list[str] = []
        folded: list[str] = []
        exact: list[str] = []
        for needle in needles:
            if needle.literal and needle.ignore_case:
                words.append(needle.pattern.lower())
            elif needle.ignore_case:
                folded.append(needle.pattern)
            elif needle.literal:
                exact.append(re.escape(needle.pattern))
            else:
                exact.append(needle.pattern)
        self.exact: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in dict.fromkeys(exact))
        self.folded: re.Pattern[str] | None = None
        if folded:
            self.folded = re.compile("|".join(f"(?:{p})" for p in folded), re.IGNORECASE)
        self.words_folded: re.Pattern[str] | None = None
        self.words_lower: re.Pattern[str] | None = None
        if words:
            trie = trie_regex(words)
            self.words_folded = re.compile(trie, re.IGNORECASE)
            self.words_lower = re.compile(trie)

    def _searches(self, text: str) -> list[tuple[re.Pattern[str], str]]:
        """(pattern, text to search it in) pairs covering every needle for ``text``."""
        pairs = [(p, text) for p in self.exact]
        if self.folded is not None:
            pairs.append((self.folded, text))
        if self.words_folded is not None and self.words_lower is not None:
            if text.isascii():
                pairs.append((self.words_lower, text.lower()))
            else:
                pairs.append((self.words_folded, text))
        return pairs

    def search_line(self, line: str) -> bool:
        """Whether ``line`` holds any needle."""
        return any(p.search(t) is not None for p, t in self._searches(line))

    def candidate_line_numbers(self, text: str) -> list[int]:
        """1-based numbers of the ``\\n``-separated lines of ``text`` holding a needle.

        Each pattern is searched over the whole text at C speed; after a hit it
        resumes at the next line, since one needle is enough to send a line to
        the plugins.
        """
        starts: set[int] = set()
        for pattern, haystack in self._searches(text):
            pos = 0
            while True:
                match = pattern.search(haystack, pos)
                if match is None:
                    break
                starts.add(haystack.rfind("\n", 0, match.start()) + 1)
                next_newline = haystack.find("\n", match.end())
                if next_newline < 0:
                    break
                pos = next_newline + 1
        numbers: list[int] = []
        line = 1
        counted_to = 0
        for start in sorted(starts):
            line += text.count("\n", counted_to, start)
            counted_to = start
            numbers.append(line)
        return numbers

    def candidate_lines_of(self, lines: Sequence[str]) -> list[int]:
        """1-based indexes of ``lines`` holding a needle, testing each line on its own.

        Used when a transformer produced the lines (a value may span newlines there).
        """
        return [number for number, line in enumerate(lines, start=1) if self.search_line(line)]


def build_needles(plugins: Iterable[object]) -> NeedleSet | None:
    """The needles of every plugin; None (no prefiltering) when one plugin is unknown."""
    needles: list[Needle] = []
    for plugin in plugins:
        found = plugin_needles(plugin)
        if found is None:
            return None
        needles.extend(found)
    return NeedleSet(needles) if needles else None
