import { describe, expect, it } from "vitest";

import { liveFrom, shownState } from "@/lib/live";

import { makeDoc } from "./fixtures";

const event = (at: string, progress: number) =>
  liveFrom({
    id: null, document_id: "d", type: "stage.progress", status: "processing", stage: "extract",
    progress, message: `progress ${progress}`, data: {}, created_at: at,
  });

describe("shownState", () => {
  it("paints an event newer than the row until the refetch catches up", () => {
    const doc = makeDoc({ updated_at: "2026-01-01T10:00:01Z", progress: 30 });
    expect(shownState(doc, event("2026-01-01T10:00:02Z", 45))).toMatchObject({ progress: 45, message: "progress 45" });
  });

  it("keeps the database's row when the event is older than it", () => {
    const doc = makeDoc({ updated_at: "2026-01-01T10:00:05Z", status: "review", stage: null, progress: 100 });
    expect(shownState(doc, event("2026-01-01T10:00:02Z", 45))).toMatchObject({ status: "review", progress: 100 });
  });
});
