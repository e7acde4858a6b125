// The server's clock, as seen from the browser.
//
// Every API answer carries `X-Server-Time-Ms` (the server's clock when it
// answered). With the browser's clock read just before sending and just after
// the answer, one exchange gives an estimate of the offset (server − browser):
// the server's stamp minus the middle of the round trip. Estimates from the
// last few exchanges are combined by their median, so one slow answer (a long
// round trip, where the middle is a poor guess) does not move the clock.
// `serverNow()` is the browser's clock plus that offset: ages computed with it
// agree with the server's timestamps however wrong the browser's clock is.

/** How many recent estimates are kept. */
export const CLOCK_SAMPLES = 9;
/** Round trips longer than this say little about the offset; they are ignored once a better one exists. */
export const MAX_USEFUL_RTT_MS = 10_000;

export interface ClockSample {
  offsetMs: number;
  rttMs: number;
}

/** The offset one exchange suggests: the server's stamp minus the middle of the round trip. */
export function offsetFrom(serverMs: number, sentMs: number, receivedMs: number): ClockSample | null {
  if (!Number.isFinite(serverMs) || !Number.isFinite(sentMs) || !Number.isFinite(receivedMs)) return null;
  const rttMs = receivedMs - sentMs;
  // A negative round trip: the browser's clock was changed meanwhile.
  if (rttMs < 0) return null;
  return { offsetMs: serverMs - (sentMs + rttMs / 2), rttMs };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A header value in epoch ms, or null when it is missing or not a number. */
export function parseServerTime(header: string | null): number | null {
  if (header === null || !/^\d{1,16}$/.test(header.trim())) return null;
  const ms = Number(header.trim());
  return Number.isSafeInteger(ms) ? ms : null;
}

export class ServerClock {
  #samples: ClockSample[] = [];
  #offsetMs = 0;
  #listeners = new Set<(offsetMs: number) => void>();

  /** Server − browser, in ms (0 until an answer said the server's time). */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Whether any answer has told the server's time yet. */
  get known(): boolean {
    return this.#samples.length > 0;
  }

  /** Take one exchange into account: the server's stamp and the browser's clock around it. */
  observe(serverMs: number, sentMs: number, receivedMs: number): void {
    const sample = offsetFrom(serverMs, sentMs, receivedMs);
    if (sample === null) return;
    const good = this.#samples.filter((s) => s.rttMs <= MAX_USEFUL_RTT_MS);
    if (sample.rttMs > MAX_USEFUL_RTT_MS && good.length > 0) return;
    this.#samples = [...this.#samples, sample].slice(-CLOCK_SAMPLES);
    const before = this.#offsetMs;
    this.#offsetMs = Math.round(median(this.#samples.map((s) => s.offsetMs)));
    if (this.#offsetMs !== before) for (const listener of this.#listeners) listener(this.#offsetMs);
  }

  /** The server's clock now (the browser's clock plus the offset). */
  now(browserNowMs: number = Date.now()): number {
    return browserNowMs + this.#offsetMs;
  }

  /** Be told when the offset changes (returns the way to stop). */
  onChange(listener: (offsetMs: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  reset(): void {
    this.#samples = [];
    this.#offsetMs = 0;
  }
}

/** The page's one estimate of the server's clock, fed by every API answer (api.ts). */
export const serverClock = new ServerClock();

/** The server's clock now, in epoch ms: use it wherever an age or a window's end is computed. */
export function serverNow(): number {
  return serverClock.now();
}
