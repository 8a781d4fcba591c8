/** An API failure, carrying the error envelope's message: what the user reads. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const FALLBACK: Record<number, string> = {
  0: "Cannot reach the server. Check your connection and try again.",
  401: "Sign in to continue.",
  403: "You are not allowed to do this.",
  404: "Not found.",
  413: "The file is larger than the upload limit.",
  429: "Too many requests; wait a moment and try again.",
  502: "The server is unavailable right now; try again shortly.",
  503: "The server is unavailable right now; try again shortly.",
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Builds an ApiError from a parsed body; never lets raw JSON reach the screen. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isRecord(body) && isRecord(body.error)) {
    const { code, message, details } = body.error;
    if (typeof message === "string" && message) {
      return new ApiError(
        status,
        typeof code === "string" ? code : "error",
        message,
        isRecord(details) ? details : {},
      );
    }
  }
  const message = FALLBACK[status] ?? `The server answered with an error (HTTP ${status}).`;
  return new ApiError(status, "error", message);
}

/** Parses a failed Response's body (JSON envelope or anything else) into an ApiError. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = null;
  }
  return toApiError(response.status, body);
}

/** A message for any thrown value, for display. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return FALLBACK[0] ?? "Network error";
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong.";
}
