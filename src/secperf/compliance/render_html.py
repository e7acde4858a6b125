"""The report as one self-contained, printable HTML file.

Inline CSS (with print rules), inline SVG charts, no script and no external
resource: it reads the same offline, printed, or on a phone. Every value
comes from the report's data and is escaped. The data itself is embedded at
the end (``digest.DATA_ELEMENT_ID``) with its SHA-256, so the file can be
checked (``secperf report --verify FILE``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from secperf.compliance.data import AGE_BUCKETS
from secperf.compliance.digest import DATA_ELEMENT_ID, HASH_ELEMENT_ID
from secperf.timefmt import iso_date, iso_minutes

#: Severity colours: dark enough for white text, and told apart by their label too.
_SEVERITY_COLOUR = {
    "critical": "#8b1a1a",
    "high": "#b34700",
    "medium": "#7a5c00",
    "low": "#1f5f8b",
    "info": "#555555",
}

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1a1a1a; background: #fff; margin: 0 auto; padding: 1rem; max-width: 62rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; border-bottom: 2px solid #1a1a1a;
  padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
p, li { max-width: 48rem; }
.meta { color: #333; }
.nodata { border: 1px dashed #555; padding: .6rem .8rem; color: #333; background: #f6f6f6; }
.tiles { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0; }
.tile { border: 1px solid #888; border-radius: 6px; padding: .4rem .7rem; min-width: 9rem; }
.tile b { display: block; font-size: 1.3rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #bbb; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #ececec; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.sev { color: #fff; border-radius: 3px; padding: 0 .3rem; font-size: .8rem; white-space: nowrap; }
.bad { color: #8b1a1a; font-weight: 600; }
.good { color: #1d5e20; font-weight: 600; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em;
  overflow-wrap: anywhere; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: #1a1a1a; }
details pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .75rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  tr, svg, .tile { break-inside: avoid; }
  details { display: none; }
  .scroll { overflow: visible; }
}
@page { size: A4; margin: 15mm; }
"""


#: Severities, most severe first (the order of every table and chart).
_SEVERITIES = tuple(_SEVERITY_COLOUR)
#: Age buckets of open findings, youngest first.
_AGE_LABELS = tuple(label for label, *_ in AGE_BUCKETS)


def _ordered(mapping: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """``mapping``'s keys in ``order``, then any other key sorted (independent of key order)."""
    known = [k for k in order if k in mapping]
    return known + sorted(k for k in mapping if k not in order)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(ms: int | None) -> str:
    return "-" if ms is None else iso_minutes(ms)


def _num(value: float | int | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,}{suffix}"


def _sev(severity: str) -> str:
    colour = _SEVERITY_COLOUR.get(severity, "#555555")
    return f'<span class="sev" style="background:{colour}">{_e(severity)}</span>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table of already-escaped cells; ``numeric`` columns align right."""
    head = "".join(
        f'<th{" class=num" if i in numeric else ""} scope="col">{_e(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _none(text: str) -> str:
    return f'<p class="nodata">{_e(text)}</p>'


# --------------------------------------------------------------------------- charts


def _bar_chart(title: str, bars: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """Horizontal bars (label, value, colour) as inline SVG, with the value written out."""
    if not bars or all(v == 0 for _, v, _ in bars):
        return _none(f"{title}: nothing to show in this period.")
    top = max(v for _, v, _ in bars) or 1.0
    row_h, label_w, bar_w = 22, 260, 300
    height = row_h * len(bars) + 10
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {label_w + bar_w + 70} {height}"'
        f' width="{label_w + bar_w + 70}" height="{height}">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, value, colour) in enumerate(bars):
        y = 5 + i * row_h
        width = 0 if value <= 0 else max(2, round(bar_w * value / top))
        parts.append(f'<text x="0" y="{y + 15}">{_e(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 8}"'
            f' fill="{colour}"/>'
        )
        parts.append(f'<text x="{label_w + width + 6}" y="{y + 15}">{_e(_num(value, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _coverage_chart(cadence: Sequence[Mapping[str, Any]], since_ms: int, until_ms: int) -> str:
    """Coverage % of each scan over the period, one line of points per target."""
    series = [(c["target"], c["coverage"]) for c in cadence if c["coverage"]]
    if not series:
        return _none("Coverage over time: no complete scan in this period.")
    width, height, left, bottom = 620, 200, 40, 30
    span = max(1, until_ms - since_ms)
    palette = ["#1f5f8b", "#8b1a1a", "#1d5e20", "#6a3d9a", "#7a5c00"]
    full_h = height + 20 * len(series)
    axis_y = height - bottom
    parts = [
        f'<svg role="img" aria-label="Coverage over time" viewBox="0 0 {width} {full_h}"'
        f' width="{width}" height="{full_h}">',
        "<title>Scan coverage (% of eligible files) over the period</title>",
        f'<line x1="{left}" y1="10" x2="{left}" y2="{axis_y}" stroke="#555"/>',
        f'<line x1="{left}" y1="{axis_y}" x2="{width - 10}" y2="{axis_y}" stroke="#555"/>',
    ]
    plot_h = height - bottom - 10
    for pct in (0, 50, 100):
        y = 10 + plot_h * (1 - pct / 100)
        parts.append(f'<text x="2" y="{y + 4:.0f}">{pct}%</text>')
        parts.append(
            f'<line x1="{left}" y1="{y:.0f}" x2="{width - 10}" y2="{y:.0f}" stroke="#ddd"/>'
        )
    parts.append(f'<text x="{left}" y="{height - 10}">{_e(iso_date(since_ms))}</text>')
    parts.append(
        f'<text x="{width - 10}" y="{height - 10}" text-anchor="end">'
        f"{_e(iso_date(until_ms))}</text>"
    )
    for n, (target, points) in enumerate(series):
        colour = palette[n % len(palette)]
        xy = []
        for point in points:
            x = left + (width - 10 - left) * (point["at_ms"] - since_ms) / span
            y = 10 + plot_h * (1 - (point["coverage_percent"] or 0.0) / 100)
            xy.append((x, y))
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        ly = height + 20 * n + 5
        parts.append(f'<rect x="{left}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + 16}" y="{ly + 9}">{_e(target)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- sections


def _summary(data: Mapping[str, Any]) -> str:
    findings = data["findings"]
    gates = data["gates"]
    breaches = len(data["remediation"]["breaches"])
    tiles = [
        ("targets", _num(len(data["scope"]["targets"]))),
        ("scans", _num(sum(c["scans"] for c in data["cadence"]))),
        ("open violations", _num(findings["violations"])),
        ("SLA breaches", _num(breaches)),
        ("false-positive rate", _num(round(100 * findings["false_positive_rate"], 1), " %")),
        (
            "gate pass rate",
            "-" if gates["pass_rate"] is None else _num(round(100 * gates["pass_rate"], 1), " %"),
        ),
    ]
    return (
        '<div class="tiles">'
        + "".join(f'<div class="tile">{_e(label)}<b>{value}</b></div>' for label, value in tiles)
        + "</div>"
    )


def _cadence_section(data: Mapping[str, Any]) -> str:
    cadence = data["cadence"]
    if not cadence:
        return _none("No scan of any target in this period.")
    rows = [
        (
            f'<span class="mono">{_e(c["target"])}</span>',
            _num(c["scans"]),
            _num(c["imports"]),
            f'<span class="{"bad" if c["days_without_scan"] else "good"}">'
            f"{_num(c['days_without_scan'])}</span>"
            f" of {_num(c['days'])}",
            _when(c["last_scan_ms"]),
            _num(c["coverage_last_percent"], " %"),
            _num(c["coverage_min_percent"], " %"),
        )
        for c in cadence
    ]
    period = data["period"]
    return _table(
        [
            "target",
            "scans",
            "imports",
            "days without a scan",
            "last scan",
            "coverage (last)",
            "coverage (lowest)",
        ],
        rows,
        numeric=(1, 2, 5, 6),
    ) + _coverage_chart(cadence, period["since_ms"], period["until_ms"])


def _findings_section(data: Mapping[str, Any]) -> str:
    findings = data["findings"]
    if not findings["findings"]:
        return _none("No finding in the latest scan of any target in scope.")
    # Tables follow the fixed orders, never the data's key order: the page drawn
    # again from the embedded (key-sorted) data must be the same page (--verify).
    by_severity = findings["by_severity"]
    severity_bars = [
        (s, float(by_severity[s]), _SEVERITY_COLOUR[s]) for s in _ordered(by_severity, _SEVERITIES)
    ]
    by_age = findings["by_age"]
    buckets = _ordered(by_age, _AGE_LABELS)
    severities = _ordered(by_age[buckets[0]], _SEVERITIES) if buckets else []
    age_rows = [
        (
            _e(bucket),
            *(_num(by_age[bucket][s]) for s in severities),
            _num(sum(by_age[bucket].values())),
        )
        for bucket in buckets
    ]
    items = [
        (
            _sev(i["severity"]),
            f'<span class="mono">{_e(i["rule_id"])}</span><br>{_e(i["message"])}',
            f'<span class="mono">{_e(i["path"])}:{_e(i["line"])}</span>',
            _e(f"CWE-{i['cwe']}" if i["cwe"] is not None else "-"),
            _e(i["owasp"] or "-"),
            _e(i["state"]),
            _num(i["age_days"]),
        )
        for i in findings["items"]
    ]
    return (
        f"<p>{_num(findings['findings'])} findings in the latest scan of each target:"
        f" {_num(findings['violations'])} violations"
        f" ({_num(findings['new_violations'])} new since the baseline),"
        f" {_num(findings['false_positives'])} false positives,"
        f" {_num(findings['accepted_risks'])} accepted risks.</p>"
        + _bar_chart("Open violations by severity", severity_bars)
        + "<h3>Open violations by age (days since first seen)</h3>"
        + _table(
            ["age", *severities, "total"], age_rows, numeric=tuple(range(1, len(severities) + 2))
        )
        + "<h3>Every finding</h3>"
        + _table(
            ["severity", "rule", "location", "CWE", "OWASP", "state", "age (days)"],
            items,
            numeric=(6,),
        )
    )


def _mapping_section(data: Mapping[str, Any]) -> str:
    mapping = data["mapping"]
    owasp = mapping["owasp"]
    bars = [(c["label"], float(c["violations"]), "#1f5f8b") for c in owasp]
    rows = [
        (
            _e(c["label"]),
            _num(c["violations"]),
            _e(", ".join(f"CWE-{x}" for x in c["cwes"]) or "-"),
        )
        for c in owasp
    ]
    unmapped = (
        _table(
            ["CWE", "violations"],
            [(_e(f"CWE-{u['cwe']}"), _num(u["violations"])) for u in mapping["unmapped"]],
            numeric=(1,),
        )
        if mapping["unmapped"]
        else "<p>None: every CWE found maps to a category.</p>"
    )
    top25 = [
        (_num(t["rank"]), _e(f"CWE-{t['cwe']}"), _e(t["name"]), _num(t["violations"]))
        for t in mapping["cwe_top25"]
    ]
    return (
        f"<p>Open violations by category of the {_e(mapping['owasp_edition'])}, through the CWE id"
        " each scanner gives its findings.</p>"
        + _bar_chart("Open violations by OWASP Top 10 (2021) category", bars)
        + _table(["category", "violations", "CWEs found"], rows, numeric=(1,))
        + f"<h3>Not in the OWASP Top 10 (2021)</h3>{unmapped}"
        + f"<p>Findings without a CWE id: {_num(mapping['without_cwe'])}.</p>"
        + f"<h3>{_e(mapping['cwe_top25_edition'])}</h3>"
        + _table(["rank", "CWE", "weakness", "violations"], top25, numeric=(0, 3))
    )


def _remediation_section(data: Mapping[str, Any]) -> str:
    remediation = data["remediation"]
    rows = [
        (
            _sev(sev),
            _num(v["sla_days"], " d") if v["sla_days"] is not None else "no deadline",
            _num(v["fixed"]),
            _num(v["fixed_within_sla"]),
            _num(v["median_days"], " d"),
            _num(v["max_days"], " d"),
            f'<span class="{"bad" if v["breaches"] else "good"}">{_num(v["breaches"])}</span>',
        )
        for sev, v in (
            (s, remediation["per_severity"][s])
            for s in _ordered(remediation["per_severity"], _SEVERITIES)
        )
    ]
    breaches = remediation["breaches"]
    listed = (
        _table(
            ["severity", "status", "rule", "location", "first seen", "fixed", "days", "SLA"],
            [
                (
                    _sev(b["severity"]),
                    f'<span class="bad">{_e(b["status"])}</span>',
                    f'<span class="mono">{_e(b["rule_id"])}</span>',
                    f'<span class="mono">{_e(b["path"])}:{_e(b["line"])}</span>',
                    _when(b["first_seen_ms"]),
                    _when(b["fixed_ms"]),
                    _num(b["days"]),
                    _num(b["sla_days"], " d"),
                )
                for b in breaches
            ],
            numeric=(6, 7),
        )
        if breaches
        else "<p class=good>No breach: every finding was fixed, or is still open,"
        " within its deadline.</p>"
    )
    return (
        "<p>Time to remediate: from the end of the first scan that reported a finding to the end"
        " of the first later scan that no longer did. Open findings past their deadline are"
        " breaches too, unless triage set them aside.</p>"
        + _table(
            ["severity", "policy", "fixed", "within policy", "median", "longest", "breaches"],
            rows,
            numeric=(2, 3, 4, 5, 6),
        )
        + f"<h3>Every breach ({len(breaches)})</h3>{listed}"
    )


def _triage_section(data: Mapping[str, Any]) -> str:
    triage = data["triage"]
    accepted = triage["accepted_risks"]

    def rows(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
        return [
            (
                _sev(a["severity"]),
                f'<span class="mono">{_e(a["rule_id"])}</span>',
                f'<span class="mono">{_e(a["path"])}</span>',
                _e(a["owner"]),
                _e(a["reason"] or "-"),
                _when(a["decided_ms"]),
                _when(a["expires_ms"]) if a["expires_ms"] is not None else "never",
                '<span class="bad">expired</span>' if a["expired"] else "in force",
            )
            for a in entries
        ]

    headers = ["severity", "rule", "path", "owner", "reason", "accepted", "expires", "status"]
    expired = triage["expired_in_period"]
    return (
        f"<p>False-positive rate: {_num(round(100 * triage['false_positive_rate'], 2), ' %')}"
        f" ({_num(triage['false_positives'])} of {_num(triage['findings'])} findings"
        " in the latest scans).</p>"
        + "<h3>Accepted risks</h3>"
        + (_table(headers, rows(accepted)) if accepted else "<p>None.</p>")
        + f"<h3>Acceptances that expired in the period ({len(expired)})</h3>"
        + (_table(headers, rows(expired)) if expired else "<p>None.</p>")
    )


def _secrets_section(data: Mapping[str, Any]) -> str:
    secrets = data["secrets"]
    if not secrets:
        return "<p>No secret found in this period.</p>"
    return (
        "<p>Previews only, as the store keeps them: secperf never stores a secret's value.</p>"
        + _table(
            ["severity", "kind", "location", "preview", "first seen", "state"],
            [
                (
                    _sev(s["severity"]),
                    _e(s["kind"]),
                    f'<span class="mono">{_e(s["path"])}:{_e(s["line"])}</span>',
                    f"<code>{_e(s['preview'] or '-')}</code>",
                    _when(s["first_seen_ms"]),
                    _e(s["state"]),
                )
                for s in secrets
            ],
        )
    )


def _dependencies_section(data: Mapping[str, Any]) -> str:
    deps = data["dependencies"]
    if not deps:
        return "<p>No vulnerable dependency found in this period.</p>"
    return _table(
        ["severity", "package", "installed", "advisory", "fixed in", "state"],
        [
            (
                _sev(d["severity"]),
                _e(d["package"]),
                _e(d["installed_version"]),
                f'<span class="mono">{_e(d["advisory"])}</span><br>{_e(", ".join(d["aliases"]))}',
                _e(", ".join(d["fixed_versions"]) or "no fixed version"),
                _e(d["state"]),
            )
            for d in deps
        ],
    )


def _gates_section(data: Mapping[str, Any]) -> str:
    gates = data["gates"]
    if not gates["runs"]:
        return _none("No gate run in this period.")
    bars = [
        ("pass", float(gates["pass"]), "#1d5e20"),
        ("block", float(gates["block"]), "#8b1a1a"),
        ("cannot evaluate", float(gates["cannot_evaluate"]), "#555555"),
    ]
    reasons = gates["block_reasons"]
    return (
        f"<p>{_num(gates['runs'])} runs:"
        f" pass rate {_num(round(100 * gates['pass_rate'], 1), ' %')},"
        f" block rate {_num(round(100 * gates['block_rate'], 1), ' %')}.</p>"
        + _bar_chart("Gate verdicts", bars)
        + "<h3>Why runs were blocked</h3>"
        + (
            _table(
                ["condition", "blocked runs"],
                [(_e(r["condition"]), _num(r["runs"])) for r in reasons],
                numeric=(1,),
            )
            if reasons
            else "<p>No run was blocked.</p>"
        )
    )


def _objectives_section(data: Mapping[str, Any]) -> str:
    objectives = data["objectives"]
    if not objectives:
        return "<p>No objective is configured (<code>[[report.objectives]]</code>).</p>"
    rows = []
    for o in objectives:
        if o["attainment_pct"] is None:
            outcome = "no data in this period"
        elif o["met"]:
            outcome = '<span class="good">met</span>'
        else:
            outcome = '<span class="bad">missed</span>'
        rows.append(
            (
                _e(o["title"]),
                _num(o["target_pct"], " %"),
                _num(o["attainment_pct"], " %"),
                outcome,
                f"{_num(o['steps'])} steps of {_num(o['step_ms'] // 1000)} s,"
                f" {_num(o['series'])} series",
            )
        )
    return (
        "<p>Attainment: the share of time steps (each step's average value, from stored samples"
        " and their downsampling tiers) in which the objective held.</p>"
        + _table(
            ["objective", "target", "attained", "outcome", "measured over"], rows, numeric=(1, 2)
        )
    )


def _cost_section(data: Mapping[str, Any]) -> str:
    cost = data["cost"]
    if not cost["scans"]:
        return _none("No scan ran in this period.")
    rows = [
        (
            f'<span class="mono">{_e(s["scan_id"])}</span>',
            f'<span class="mono">{_e(s["target"])}</span>',
            _when(s["started_ms"]),
            _num(s["duration_ms"] / 1000 if s["duration_ms"] is not None else None, " s"),
            _num(s["cpu_s"], " s"),
            _e(s["budget"]),
            "yes" if s["within_budget"] is True else ("no" if s["within_budget"] is False else "-"),
            _num(s["throttled_ms"], " ms") if s["throttled_ms"] is not None else "not recorded",
        )
        for s in cost["scans"]
    ]
    return (
        f"<p>{len(cost['scans'])} scans: {_num(cost['total_cpu_s'])} CPU seconds,"
        f" {_num(round(cost['total_duration_ms'] / 1000, 1))} s in all; within the impact budget"
        f" {_num(cost['within_budget'])}, over it {_num(cost['over_budget'])}, budget off or not"
        f" recorded {_num(cost['budget_off_or_not_recorded'])}.</p>"
        + _table(
            [
                "scan",
                "target",
                "started",
                "duration",
                "CPU",
                "budget",
                "within budget",
                "throttled",
            ],
            rows,
            numeric=(3, 4, 7),
        )
    )


def _evidence_section(data: Mapping[str, Any], sha256: str) -> str:
    evidence = data["evidence"]
    versions = evidence["scanner_versions"]
    # Quotes stay as they are (readable JSON); <, > and & are escaped, so no tag can open.
    embedded = html.escape(
        json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False), quote=False
    )
    return (
        _table(
            ["item", "value"],
            [
                (
                    "scans",
                    f'<span class="mono">{_e(", ".join(evidence["scan_ids"]) or "-")}</span>',
                ),
                ("scanners used", _e(", ".join(evidence["scanners_used"]) or "-")),
                (
                    "scanner versions",
                    "<br>".join(
                        f"{_e(k)}: <span class=mono>{_e(v)}</span>" for k, v in versions.items()
                    )
                    or "not known to the process that wrote this report",
                ),
                (
                    "configuration SHA-256",
                    f"<code>{_e(evidence['config_sha256'] or 'not known')}</code>",
                ),
                (
                    "gate runs",
                    f'<span class="mono">{_e(", ".join(evidence["gate_run_ids"]) or "-")}</span>',
                ),
                ("report data SHA-256", f'<code id="{HASH_ELEMENT_ID}">{_e(sha256)}</code>'),
            ],
        )
        + "<p>The SHA-256 above is taken over the report's data below, written as canonical JSON"
        " (keys sorted, no spaces, UTF-8). To check that this report was not edited, run"
        " <code>secperf report --verify FILE</code>, or take the data out of the section below,"
        " and compute <code>sha256(json.dumps(data, sort_keys=True, separators=(',', ':'),"
        " ensure_ascii=False).encode())</code>: it must equal the hash shown.</p>"
        "<details><summary>The report's data (JSON)</summary>"
        f'<pre id="{DATA_ELEMENT_ID}">{embedded}</pre></details>'
    )


def _cut_note(period: Mapping[str, Any]) -> str:
    """Why the period ends at the time of writing when a later end was asked for."""
    requested = period.get("requested_until_ms")
    if requested is None:
        return ""
    return (
        f"; {_e(_when(requested))} was asked for as the end, and the period stops"
        " at the time of writing (nothing after now is known)"
    )


def render_html(data: Mapping[str, Any], sha256: str) -> str:
    """The whole report as one HTML document."""
    period = data["period"]
    scope = data["scope"]
    title = (
        "secperf compliance report:"
        f" {iso_date(period['since_ms'])} to {iso_date(period['until_ms'])}"
    )
    scope_text = scope["target"] or (", ".join(scope["targets"]) or "all targets")
    head = (
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">Scope: <span class="mono">{_e(scope_text)}</span>.'
        f" Period: {_e(_when(period['since_ms']))} to {_e(_when(period['until_ms']))}"
        f" ({_num(period['days'])} days){_cut_note(period)}."
        f" Written {_e(_when(data['generated_ms']))} by"
        f" {_e(data['generator'])}.</p>"
    )
    if not data["has_data"]:
        body = _none(
            "No data in this period: no scan, no gate run and no sample of a configured objective"
            " was stored between these dates for this scope."
        )
        sections = [("Evidence", _evidence_section(data, sha256))]
    else:
        body = _summary(data)
        sections = [
            ("Scan cadence and coverage", _cadence_section(data)),
            ("Findings by severity and age", _findings_section(data)),
            ("OWASP Top 10 and CWE Top 25", _mapping_section(data)),
            ("Time to remediate", _remediation_section(data)),
            ("Triage: accepted risks and false positives", _triage_section(data)),
            ("Secrets", _secrets_section(data)),
            ("Vulnerable dependencies", _dependencies_section(data)),
            ("Quality gate", _gates_section(data)),
            ("Performance objectives", _objectives_section(data)),
            ("Cost of the scans and impact budget", _cost_section(data)),
            ("Evidence", _evidence_section(data, sha256)),
        ]
    content = "".join(f"<section><h2>{_e(name)}</h2>{html_}</section>" for name, html_ in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>{head}{body}{content}</body></html>\n"
    )
