import { describe, expect, it } from "vitest";

import { ApiError, errorFromResponse, messageOf, toApiError } from "@/lib/api/errors";

describe("API errors", () => {
  it("takes the message from the error envelope", () => {
    const error = toApiError(409, { error: { code: "invalid_transition", message: "Only documents in review can be approved.", details: { status: "finalised" } } });
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe("Only documents in review can be approved.");
    expect(error.code).toBe("invalid_transition");
  });

  it("never shows raw bodies: a non-envelope answer gets a plain sentence", async () => {
    const error = await errorFromResponse(new Response("<html>Bad gateway</html>", { status: 502 }));
    expect(error.message).toBe("The server is unavailable right now; try again shortly.");
    expect(messageOf(toApiError(418, { detail: [{ loc: ["x"] }] }))).not.toContain("{");
  });

  it("explains a network failure", () => {
    expect(messageOf(new TypeError("Failed to fetch"))).toMatch(/Cannot reach the server/);
  });
});
