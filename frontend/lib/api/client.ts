import createClient from "openapi-fetch";

import { CSRF_HEADER, csrfToken } from "@/lib/cookies";
import { ApiError, toApiError } from "@/lib/api/errors";
import type { components, paths } from "@/lib/api/schema";
import { isAuthPath, refreshSession, sessionExpired } from "@/lib/api/session";

export type Document = components["schemas"]["DocumentRead"];
export type DocumentPage = components["schemas"]["DocumentPage"];
export type AuditEvent = components["schemas"]["EventRead"];
export type User = components["schemas"]["UserRead"];
export type Status = components["schemas"]["Status"];
export type Stage = components["schemas"]["Stage"];
export type ApproveBody = components["schemas"]["ApproveRequest"];

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function withCsrf(request: Request): Request {
  if (!UNSAFE.has(request.method.toUpperCase())) return request;
  const token = csrfToken();
  if (!token) return request;
  const headers = new Headers(request.headers);
  headers.set(CSRF_HEADER, token);
  return new Request(request, { headers });
}

/**
 * fetch for the API: cookies, the CSRF header on unsafe requests, and one silent refresh on 401
 * before giving up and sending the user to sign in.
 */
export async function apiFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const response = await fetch(withCsrf(input));
  if (response.status !== 401 || isAuthPath(input.url)) return response;
  if (await refreshSession()) {
    const again = await fetch(withCsrf(retry));
    if (again.status !== 401) return again;
  }
  sessionExpired();
  return response;
}

const origin = typeof window === "undefined" ? "http://localhost" : window.location.origin;

export const api = createClient<paths>({
  baseUrl: origin,
  credentials: "same-origin",
  fetch: (request: Request) => apiFetch(request),
});

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Unwraps an openapi-fetch result: the data, or an ApiError with the envelope's message. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
  }
  const { data, error, response } = result;
  if (!response.ok || error !== undefined) {
    throw toApiError(response.status, error);
  }
  return data as T;
}
