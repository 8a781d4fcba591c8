import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api, unwrap } from "@/lib/api/client";
import { ApiError } from "@/lib/api/errors";
import { setSessionExpiredHandler } from "@/lib/api/session";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const doc = { id: "d1", status: "finalised" };

describe("the API client", () => {
  const expired = vi.fn();
  let fetchMock: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    setSessionExpiredHandler(expired);
    document.cookie = "docflow_csrf=csrf-abc; path=/";
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    setSessionExpiredHandler(null);
    expired.mockReset();
  });

  const urlOf = (call: unknown[]) => (call[0] instanceof Request ? call[0].url : String(call[0]));

  it("sends the CSRF cookie's value on unsafe requests only", async () => {
    fetchMock.mockResolvedValueOnce(json(200, doc)).mockResolvedValueOnce(json(200, { items: [], total: 0, page: 1, page_size: 25 }));
    await unwrap(api.POST("/api/v1/review/{document_id}/approve", { params: { path: { document_id: "d1" } }, body: {} }));
    await unwrap(api.GET("/api/v1/documents"));
    const [post, get] = fetchMock.mock.calls.map((c) => c[0] as Request);
    expect(post?.headers.get("X-CSRF-Token")).toBe("csrf-abc");
    expect(get?.headers.get("X-CSRF-Token")).toBeNull();
  });

  it("refreshes the session once on 401 and retries the request", async () => {
    fetchMock
      .mockResolvedValueOnce(json(401, { error: { code: "unauthorized", message: "Token expired", details: {} } }))
      .mockResolvedValueOnce(json(200, { access_token: "x" }))
      .mockResolvedValueOnce(json(200, doc));
    const result = await unwrap(api.GET("/api/v1/documents/{document_id}", { params: { path: { document_id: "d1" } } }));
    expect(result).toEqual(doc);
    expect(fetchMock.mock.calls.map(urlOf)).toEqual([
      "http://localhost:3000/api/v1/documents/d1",
      "/api/v1/auth/refresh",
      "http://localhost:3000/api/v1/documents/d1",
    ]);
    expect(expired).not.toHaveBeenCalled();
  });

  it("sends the user to sign in when the refresh fails too", async () => {
    fetchMock
      .mockResolvedValueOnce(json(401, { error: { code: "unauthorized", message: "Token expired", details: {} } }))
      .mockResolvedValueOnce(json(401, { error: { code: "unauthorized", message: "Refresh token revoked", details: {} } }));
    const call = unwrap(api.GET("/api/v1/auth/me"));
    await expect(call).rejects.toBeInstanceOf(ApiError);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it("does not treat a wrong password as an expired session", async () => {
    fetchMock.mockResolvedValueOnce(json(401, { error: { code: "unauthorized", message: "Wrong email or password.", details: {} } }));
    await expect(unwrap(api.POST("/api/v1/auth/login", { body: { email: "a@b.c", password: "x" } }))).rejects.toThrow(
      "Wrong email or password.",
    );
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(expired).not.toHaveBeenCalled();
  });
});
