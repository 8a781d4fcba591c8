import { afterEach, describe, expect, it, vi } from "vitest";

import { signOut } from "@/components/AppShell";
import { sessionExpired, setSessionExpiredHandler } from "@/lib/api/session";

describe("signing out", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    setSessionExpiredHandler(null);
  });

  it("lands on the signed-out page even when open requests see 401s meanwhile", async () => {
    const assign = vi.fn();
    vi.stubGlobal("location", { ...window.location, assign, pathname: "/document", search: "?id=d1" });
    // The stream or a query notices the session is gone while the logout is on its way.
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        sessionExpired();
        return new Response(null, { status: 204 });
      }),
    );
    await signOut();
    sessionExpired(); // and once more after it
    expect(assign.mock.calls).toEqual([["/signin?signed_out=1"]]);
  });
});
