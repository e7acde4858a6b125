// The findings list's order, search and "new in range" filter (pure, tested).
//
// The default order is SonarQube's: severity (critical first), then age with
// the oldest first seen first (what has waited longest), then path and line.

import { severityRank } from "./format";
import type { FindingJson } from "./types";
import type { TimeWindow } from "./scope.svelte";

/** A finding as the API lists it: with when it was first seen (null: no complete scan held it). */
export type FindingRow = FindingJson & { first_seen_ms?: number | null };

export const SORT_KEYS = ["severity", "rule", "path", "first_seen", "scanner"] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDir = "asc" | "desc";

/** The direction a column sorts in when first chosen: severity worst first, age oldest first, text A→Z. */
export const DEFAULT_DIR: Record<SortKey, SortDir> = {
  severity: "desc",
  rule: "asc",
  path: "asc",
  first_seen: "asc",
  scanner: "asc",
};

export const DEFAULT_SORT: SortKey = "severity";

export function parseSortKey(text: string | null): SortKey {
  return (SORT_KEYS as readonly string[]).includes(text ?? "") ? (text as SortKey) : DEFAULT_SORT;
}

export function parseSortDir(text: string | null, key: SortKey): SortDir {
  return text === "asc" || text === "desc" ? text : DEFAULT_DIR[key];
}

/** A finding never seen by a complete scan sorts as the newest (it was just found). */
function firstSeen(f: FindingRow): number {
  return f.first_seen_ms ?? Number.MAX_SAFE_INTEGER;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function primary(key: SortKey, a: FindingRow, b: FindingRow): number {
  switch (key) {
    case "severity":
      return severityRank(a.severity) - severityRank(b.severity);
    case "rule":
      return compareText(a.rule_id, b.rule_id);
    case "path":
      return compareText(a.path, b.path) || a.line - b.line;
    case "first_seen":
      return firstSeen(a) - firstSeen(b);
    case "scanner":
      return compareText(a.scanner, b.scanner);
  }
}

/**
 * A comparator: the chosen column in its direction, then the default order
 * (severity desc, oldest first seen first, path, line, fingerprint) so ties are stable.
 */
export function findingOrder(key: SortKey, dir: SortDir): (a: FindingRow, b: FindingRow) => number {
  const sign = dir === "asc" ? 1 : -1;
  return (a, b) =>
    sign * primary(key, a, b) ||
    -primary("severity", a, b) ||
    primary("first_seen", a, b) ||
    primary("path", a, b) ||
    compareText(a.fingerprint, b.fingerprint);
}

export function sortFindings(rows: readonly FindingRow[], key: SortKey, dir: SortDir): FindingRow[] {
  return [...rows].sort(findingOrder(key, dir));
}

/**
 * Whether a finding matches a free-text search: every word of `query`
 * (case-insensitive) appears in its rule, message, path or scanner.
 */
export function matchesSearch(f: FindingRow, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const text = `${f.rule_id}\n${f.message}\n${f.path}\n${f.scanner}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

/** Whether a finding was first seen inside the window (the "new in range" chip). */
export function firstSeenIn(f: FindingRow, w: TimeWindow): boolean {
  const at = f.first_seen_ms;
  return at !== null && at !== undefined && at >= w.start_ms && at <= w.end_ms;
}

/** How many rows a page of the list shows; "show more" adds another page. */
export const PAGE_SIZE = 200;
