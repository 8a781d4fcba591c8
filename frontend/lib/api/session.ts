import { CSRF_HEADER, csrfToken } from "@/lib/cookies";

/**
 * Silent refresh: one POST /auth/refresh shared by every request that saw a 401 at the same time.
 * The refresh cookie is HttpOnly and scoped to /api/v1/auth, so the browser sends it itself.
 */
let refreshing: Promise<boolean> | null = null;

export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const headers: Record<string, string> = { Accept: "application/json" };
      const csrf = csrfToken();
      if (csrf) headers[CSRF_HEADER] = csrf;
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        credentials: "same-origin",
        headers,
      });
      return response.ok;
    } catch {
      return false;
    } finally {
      // Let a later expiry try again; concurrent callers already hold this promise.
      setTimeout(() => {
        refreshing = null;
      }, 0);
    }
  })();
  return refreshing;
}

export type ExpiredHandler = () => void;

function defaultExpired(): void {
  if (typeof window === "undefined") return;
  if (window.location.pathname.startsWith("/signin")) return;
  const next = window.location.pathname + window.location.search;
  // Only someone who had a session (the readable CSRF cookie is still there) is told it expired.
  const had = document.cookie.includes("docflow_csrf=");
  window.location.assign(`/signin?${had ? "expired=1&" : ""}next=${encodeURIComponent(next)}`);
}

let onExpired: ExpiredHandler = defaultExpired;

/** Tests (and the app shell) may replace what happens when the session cannot be renewed. */
export function setSessionExpiredHandler(handler: ExpiredHandler | null): void {
  onExpired = handler ?? defaultExpired;
}

export function sessionExpired(): void {
  onExpired();
}

/** Paths where a 401 means "wrong credentials", not "session expired". */
export function isAuthPath(url: string): boolean {
  return /\/api\/v1\/auth\/(login|refresh|logout)\b/.test(url);
}
