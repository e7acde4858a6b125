import { afterEach, describe, expect, it, vi } from "vitest";
import { api, apiSignals, ApiError, errorText, getToken, isNetworkError, setToken, type TokenRequest } from "./api";
import { serverClock } from "./clock";

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

afterEach(() => {
  vi.unstubAllGlobals();
  serverClock.reset();
});

describe("api", () => {
  it("learns the server's clock from X-Server-Time-Ms and tells of the contact", async () => {
    const ahead = 7 * 60_000;
    vi.stubGlobal("fetch", vi.fn(async () => answer(200, { ok: true }, { "X-Server-Time-Ms": String(Date.now() + ahead) })));
    const contacts: number[] = [];
    const stop = apiSignals.onContact((ms) => contacts.push(ms));
    await api.get("/api/v1/overview");
    stop();
    expect(contacts).toHaveLength(1);
    expect(Math.abs(serverClock.offsetMs - ahead)).toBeLessThan(1000);
  });

  it("turns a request without an answer into a network error, not 'Failed to fetch'", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    const gone: string[] = [];
    const stop = apiSignals.onUnreachable((where) => gone.push(where));
    const err = await api.get("/api/v1/scans", { limit: 5 }).catch((e: unknown) => e);
    stop();
    expect(isNetworkError(err)).toBe(true);
    expect(errorText(err)).toBe("the server cannot be reached (at GET /api/v1/scans)");
    expect(errorText(err)).not.toContain("Failed to fetch");
    expect(gone).toEqual(["GET /api/v1/scans"]);
  });

  it("asks for the token when a request is refused for want of one", async () => {
    const body = { error: { code: "http_error", message: "reading requires 'Authorization: Bearer <token>'" } };
    vi.stubGlobal("fetch", vi.fn(async () => answer(401, body)));
    const asked: TokenRequest[] = [];
    const stop = apiSignals.onTokenNeeded((req) => asked.push(req));
    const err = await api.get("/api/v1/overview").catch((e: unknown) => e);
    stop();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(401);
    expect(asked).toEqual([{ method: "GET", status: 401, message: body.error.message, where: "GET /api/v1/overview" }]);
  });

  it("does not ask for a token a server without one could not take", async () => {
    const body = { error: { code: "no_token_configured", message: "this write is disabled" } };
    vi.stubGlobal("fetch", vi.fn(async () => answer(403, body)));
    const asked: TokenRequest[] = [];
    const stop = apiSignals.onTokenNeeded((req) => asked.push(req));
    await api.post("/api/v1/silences", {}).catch(() => undefined);
    stop();
    expect(asked).toEqual([]);
  });

  it("tells listeners when the token is saved or forgotten", () => {
    const seen: string[] = [];
    const stop = apiSignals.onTokenChanged((t) => seen.push(t));
    setToken("abc");
    expect(getToken()).toBe("abc");
    setToken("");
    expect(getToken()).toBe("");
    stop();
    expect(seen).toEqual(["abc", ""]);
  });
});
