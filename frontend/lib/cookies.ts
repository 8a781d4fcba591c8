/** Reads a cookie the server made readable (only `docflow_csrf`; the tokens are HttpOnly). */
export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export const CSRF_COOKIE = "docflow_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

export function csrfToken(): string | null {
  return readCookie(CSRF_COOKIE);
}
