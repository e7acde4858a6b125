// The banner's sentence about writes the server's store refused (null: nothing to say).

import type { StoreWrites } from "./types";

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
}

export function storeWritesText(writes: StoreWrites | null | undefined): string | null {
  if (!writes || writes.failures <= 0) return null;
  const parts: string[] = [];
  if (writes.kept_events > 0) {
    parts.push(`${plural(writes.kept_events, "event", "events")} waiting to be written`);
  }
  if (writes.lost_events > 0) parts.push(`${plural(writes.lost_events, "event", "events")} lost`);
  if (writes.lost_samples > 0) {
    parts.push(`${plural(writes.lost_samples, "sample", "samples")} lost`);
  }
  const detail = parts.length ? ` (${parts.join(", ")})` : "";
  return (
    `The store refused ${plural(writes.failures, "write", "writes")} after every retry${detail}:` +
    " this page may miss data. See the server's log."
  );
}
