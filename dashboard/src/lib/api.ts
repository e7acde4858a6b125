// A small fetch wrapper: JSON in, JSON out, errors turned into ApiError with
// the server's message so the banner can show what went wrong and where.

const TOKEN_KEY = "secperf.token";

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

  /** A one-line description for the banner. */
  describe(): string {
    const where = this.where ? ` (at ${this.where})` : "";
    return `${this.status} ${this.code}: ${this.message}${where}`;
  }
}

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be disabled (private mode); the token then lives for this page only.
  }
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
  return new ApiError(
    response.status,
    error?.code ?? "http_error",
    error?.message ?? fallback,
    error?.where ?? `${method} ${path.split("?")[0]}`,
  );
}

async function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> {
  try {
    return await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server: ${String(err)}`, path);
  }
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
