import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ReviewForms } from "@/components/ReviewForms";

import { makeDoc } from "./fixtures";

function renderForms() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const onDone = vi.fn();
  render(
    <QueryClientProvider client={client}>
      <ReviewForms doc={makeDoc({ status: "review", stage: null, category: "invoice", keywords: ["invoice", "total"] })} onDone={onDone} />
    </QueryClientProvider>,
  );
  return onDone;
}

describe("ReviewForms", () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("will not reject without a reason", async () => {
    const user = userEvent.setup();
    renderForms();
    await user.click(screen.getByRole("button", { name: "Reject…" }));
    await user.click(screen.getByRole("button", { name: "Confirm rejection" }));
    expect(screen.getByRole("alert")).toHaveTextContent("Give a reason");
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("sends only the corrected fields on approval and shows the API's message on failure", async () => {
    fetchMock.mockResolvedValueOnce(
      new Response(JSON.stringify({ error: { code: "invalid_transition", message: "This document was already approved.", details: {} } }), {
        status: 409,
        headers: { "Content-Type": "application/json" },
      }),
    );
    const user = userEvent.setup();
    const onDone = renderForms();
    await user.click(screen.getByRole("button", { name: "Approve…" }));
    await user.selectOptions(screen.getByLabelText("Category"), "receipt");
    await user.click(screen.getByRole("button", { name: "Confirm approval" }));
    const request = fetchMock.mock.calls[0]?.[0] as Request;
    expect(request.url).toMatch(/\/api\/v1\/review\/.+\/approve$/);
    expect(await request.json()).toEqual({ category: "receipt" });
    expect(await screen.findByRole("alert")).toHaveTextContent("This document was already approved.");
    expect(onDone).not.toHaveBeenCalled();
  });
});
