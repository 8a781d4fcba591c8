import { describe, expect, it } from "vitest";

import { liveFrom } from "@/lib/live";
import { buildTimeline } from "@/lib/timeline";

import { makeDoc, makeEvent } from "./fixtures";

const byStep = (steps: ReturnType<typeof buildTimeline>) => Object.fromEntries(steps.map((s) => [s.step, s]));

describe("buildTimeline", () => {
  it("shows finished stages with durations, the running one with live progress, and the rest pending", () => {
    const live = liveFrom({
      id: null, document_id: "d", type: "stage.progress", status: "processing", stage: "extract",
      progress: 41, message: "Extracting text: page 3 of 12", data: { done: 3, total: 12 }, created_at: "2026-01-01T10:00:05Z",
    });
    const steps = byStep(buildTimeline(makeDoc(), [makeEvent({ type: "stage.started" })], live));
    expect(steps.validate).toMatchObject({ state: "done", durationMs: 200 });
    expect(steps.extract).toMatchObject({ state: "running", progress: 41, detail: "Extracting text: page 3 of 12" });
    expect(steps.analyze?.state).toBe("pending");
    expect(steps.review?.state).toBe("pending");
    expect(steps.export?.state).toBe("pending");
  });

  it("says a lost worker is being retried, with the attempt", () => {
    const retry = makeEvent({
      type: "stage.retry",
      message: "Worker lost during extract — resuming, attempt 2 of 3",
      data: { attempt: 2, max_attempts: 3, reason: "lease_expired" },
    });
    const steps = byStep(buildTimeline(makeDoc(), [makeEvent({ type: "stage.started" }), retry]));
    expect(steps.extract).toMatchObject({ state: "retrying", detail: "Worker lost during extract — resuming, attempt 2 of 3" });

    const resumed = makeEvent({ type: "stage.started", data: { attempt: 2, max_attempts: 3 } });
    const again = byStep(buildTimeline(makeDoc({ message: "Extracting text…" }), [retry, resumed]));
    expect(again.extract?.state).toBe("running");
    expect(again.extract?.detail).toContain("attempt 2 of 3");
  });

  it("shows the failed stage with its reason and the later ones as not reached", () => {
    const doc = makeDoc({ status: "failed", stage: "extract", error: "This PDF is damaged or incomplete and cannot be read." });
    const steps = byStep(buildTimeline(doc, []));
    expect(steps.validate?.state).toBe("done");
    expect(steps.extract).toMatchObject({ state: "failed", detail: "This PDF is damaged or incomplete and cannot be read." });
    expect(steps.categorize?.state).toBe("skipped");
    expect(steps.review?.state).toBe("skipped");
  });

  it("waits for review, then shows who approved and that it is exported", () => {
    const timings = Object.fromEntries(["validate", "extract", "analyze", "categorize"].map((s) => [s, { duration_ms: 10 }]));
    const inReview = byStep(buildTimeline(makeDoc({ status: "review", stage: null, timings }), []));
    expect(["validate", "extract", "analyze", "categorize"].map((s) => inReview[s]?.state)).toEqual(["done", "done", "done", "done"]);
    expect(inReview.review?.state).toBe("waiting");

    const approved = makeEvent({ type: "review.approved", actor: "rita@example.com", stage: null });
    const done = byStep(buildTimeline(makeDoc({ status: "finalised", stage: null, timings }), [approved]));
    expect(done.review).toMatchObject({ state: "done", detail: "Approved by rita@example.com" });
    expect(done.export?.state).toBe("done");
  });

  it("shows the rejection reason", () => {
    const rejected = makeEvent({ type: "review.rejected", actor: "rita@example.com", message: "Wrong customer", stage: null });
    const steps = byStep(buildTimeline(makeDoc({ status: "rejected", stage: null }), [rejected]));
    expect(steps.review).toMatchObject({ state: "failed", detail: "Rejected by rita@example.com: Wrong customer" });
    expect(steps.export?.state).toBe("skipped");
  });
});
