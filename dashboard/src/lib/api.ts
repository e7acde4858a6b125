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

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = getToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server: ${String(err)}`, path);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; where?: string | null } } | null)?.error;
    const fallback =
      response.status === 401
        ? "this action needs the server's token (set it in the token field)"
        : response.status === 403
          ? "the token was refused"
          : response.statusText || "request failed";
    throw new ApiError(
      response.status,
      error?.code ?? "http_error",
      error?.message ?? fallback,
      error?.where ?? `${method} ${path.split("?")[0]}`,
    );
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, params: Params = {}): Promise<T> => request<T>("GET", path + queryString(params)),
  post: <T>(path: string, body: unknown): Promise<T> => request<T>("POST", path, body),
  del: <T>(path: string): Promise<T> => request<T>("DELETE", path),
};

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
