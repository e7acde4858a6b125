// A small fetch wrapper: JSON in, JSON out, errors turned into ApiError with
// the server's message so the banner can show what went wrong and where.
// Every answer also tells the page the server's clock (X-Server-Time-Ms, see
// clock.ts) and that the server is reachable; a request that gets no answer
// (the server is down) and one refused for want of a token are told to the
// listeners in `apiSignals`, so the connection indicator and the token prompt
// can show them instead of the error banner.

import { parseServerTime, serverClock } from "./clock";

const TOKEN_KEY = "secperf.token";
/** The `code` of an ApiError for a request that got no answer at all. */
export const NETWORK_ERROR = "network";

/** Why the token prompt should open: what the server answered, in words. */
export interface TokenRequest {
  /** The refused request's method: a read ("GET") may be refused again and again, a write is one action. */
  method: string;
  status: number;
  message: string;
  where: string;
}

type Listener<T> = (value: T) => void;

function listeners<T>(): { add(listener: Listener<T>): () => void; emit(value: T): void } {
  const set = new Set<Listener<T>>();
  return {
    add(listener: Listener<T>): () => void {
      set.add(listener);
      return () => set.delete(listener);
    },
    emit(value: T): void {
      for (const listener of set) listener(value);
    },
  };
}

const contact = listeners<number>();
const unreachable = listeners<string>();
const tokenNeeded = listeners<TokenRequest>();
const tokenChanged = listeners<string>();

/** What the API layer tells the rest of the page, apart from each call's answer. */
export const apiSignals = {
  /** Any answer came (the browser's time it arrived). */
  onContact: contact.add,
  /** A request got no answer: the server cannot be reached (its path). */
  onUnreachable: unreachable.add,
  /** A request was refused for want of a (valid) token. */
  onTokenNeeded: tokenNeeded.add,
  /** The token was saved or forgotten (its new value, "" when none). */
  onTokenChanged: tokenChanged.add,
  /** Tell the listeners that a token is needed (e.g. when the event stream is refused). */
  tokenNeeded: tokenNeeded.emit,
};

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly where: string | null;

  constructor(status: number, code: string, message: string, where: string | null) {
    super(message);
    this.status = status;
    this.code = code;
    this.where = where;
  }

  /** Whether the request got no answer at all (the server is down or unreachable). */
  get isNetwork(): boolean {
    return this.code === NETWORK_ERROR;
  }

  /** A one-line description for the banner. */
  describe(): string {
    if (this.isNetwork) return `${this.message} (at ${this.where ?? "the API"})`;
    const where = this.where ? ` (at ${this.where})` : "";
    return `${this.status} ${this.code}: ${this.message}${where}`;
  }
}

// The token when storage is disabled (private mode): it then lives for this page only.
let memoryToken: string | null = null;

export function getToken(): string {
  if (memoryToken !== null) return memoryToken;
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

/** Save (or, with "", forget) the token, and tell the `onTokenChanged` listeners. */
export function setToken(token: string): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
    memoryToken = null;
  } catch {
    memoryToken = token;
  }
  tokenChanged.emit(token);
}

type Params = Record<string, string | number | boolean | null | undefined | (string | number)[]>;

/** Build a query string, repeating keys for arrays and dropping empty values. */
export function queryString(params: Params): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) {
      for (const item of value) search.append(key, String(item));
    } else {
      search.append(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function authHeaders(accept: string): Record<string, string> {
  const headers: Record<string, string> = { Accept: accept };
  const token = getToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  return headers;
}

/** The ApiError for a refused answer: the server's message and field when its body says them. */
function refusal(response: Response, text: string, method: string, path: string): ApiError {
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const error = (data as { error?: { code?: string; message?: string; where?: string | null } } | null)?.error;
  const fallback =
    response.status === 401
      ? "this action needs the server's token (set it in the token field)"
      : response.status === 403
        ? "the token was refused"
        : response.statusText || "request failed";
  const refused = new ApiError(
    response.status,
    error?.code ?? "http_error",
    error?.message ?? fallback,
    error?.where ?? `${method} ${path.split("?")[0]}`,
  );
  // No token, or one the server does not take: ask for it (a server with no
  // token configured answers 403 no_token_configured: a token would not help).
  if (response.status === 401 || (response.status === 403 && refused.code === "invalid_token")) {
    tokenNeeded.emit({ method, status: response.status, message: refused.message, where: refused.where ?? path });
  }
  return refused;
}

async function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> {
  const where = `${method} ${path.split("?")[0]}`;
  const sent = Date.now();
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    // A request the page itself aborted says nothing about the server.
    if (err instanceof Error && err.name === "AbortError") throw err;
    // fetch says only "TypeError: Failed to fetch": say what it means.
    unreachable.emit(where);
    throw new ApiError(0, NETWORK_ERROR, "the server cannot be reached", where);
  }
  const received = Date.now();
  const serverMs = parseServerTime(response.headers.get("X-Server-Time-Ms"));
  if (serverMs !== null) serverClock.observe(serverMs, sent, received);
  contact.emit(received);
  return response;
}

/** Whether an error is a request that got no answer (the connection indicator shows those). */
export function isNetworkError(err: unknown): boolean {
  return err instanceof ApiError && err.isNetwork;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers = authHeaders("application/json");
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
  const text = await response.text();
  if (!response.ok) throw refusal(response, text, method, path);
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  return data as T;
}

/** A file the server sends (e.g. a report): its bytes and its Content-Disposition header. */
export interface Downloaded {
  blob: Blob;
  disposition: string | null;
}

/**
 * GET a file with the token, as API calls send it (a plain link cannot carry
 * the Authorization header a token-protected server wants).
 */
async function download(path: string, params: Params = {}): Promise<Downloaded> {
  const url = path + queryString(params);
  const response = await send("GET", url, authHeaders("*/*"));
  if (!response.ok) throw refusal(response, await response.text(), "GET", url);
  return { blob: await response.blob(), disposition: response.headers.get("Content-Disposition") };
}

export const api = {
  get: <T>(path: string, params: Params = {}): Promise<T> => request<T>("GET", path + queryString(params)),
  post: <T>(path: string, body: unknown): Promise<T> => request<T>("POST", path, body),
  del: <T>(path: string): Promise<T> => request<T>("DELETE", path),
  download,
};

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
