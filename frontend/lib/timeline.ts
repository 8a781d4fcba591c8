import type { AuditEvent, Document } from "@/lib/api/client";
import type { LiveState } from "@/lib/live";

export const PIPELINE = ["validate", "extract", "analyze", "categorize"] as const;
export const STEPS = [...PIPELINE, "review", "export"] as const;
export type Step = (typeof STEPS)[number];

export type StepState = "pending" | "running" | "retrying" | "done" | "failed" | "waiting" | "skipped";

export interface TimelineStep {
  step: Step;
  state: StepState;
  /** 0–100 within the whole document, for a running stage. */
  progress: number | null;
  detail: string | null;
  durationMs: number | null;
}

function timing(doc: Document, stage: string): { duration_ms?: number; started_at?: string } {
  const value = (doc.timings as Record<string, unknown>)[stage];
  return typeof value === "object" && value !== null ? (value as Record<string, never>) : {};
}

function lastFor(events: AuditEvent[], stage: string): AuditEvent | undefined {
  let found: AuditEvent | undefined;
  for (const event of events) {
    const about = event.stage ?? (event.data as { stage?: string }).stage;
    if (about === stage && event.type.startsWith("stage.")) found = event;
  }
  return found;
}

function lastOf(events: AuditEvent[], type: string): AuditEvent | undefined {
  for (let i = events.length - 1; i >= 0; i -= 1) if (events[i]?.type === type) return events[i];
  return undefined;
}

/**
 * Every stage's honest state, from the document (the truth), its audit trail (retries, reasons)
 * and the latest live event (fine-grained progress the database does not keep).
 */
export function buildTimeline(doc: Document, events: AuditEvent[], live?: LiveState): TimelineStep[] {
  const current = doc.stage;
  const currentIndex = current ? PIPELINE.indexOf(current as (typeof PIPELINE)[number]) : -1;
  const failedStage =
    doc.status === "failed"
      ? (current ?? (lastOf(events, "stage.failed")?.data as { stage?: string } | undefined)?.stage ?? null)
      : null;
  const failedIndex = failedStage ? PIPELINE.indexOf(failedStage as (typeof PIPELINE)[number]) : -1;
  const pipelineOver = ["review", "finalised"].includes(doc.status);

  const steps: TimelineStep[] = PIPELINE.map((stage, index) => {
    const t = timing(doc, stage);
    const done: TimelineStep = {
      step: stage, state: "done", progress: null, detail: null, durationMs: t.duration_ms ?? null,
    };
    const pending: TimelineStep = { step: stage, state: "pending", progress: null, detail: null, durationMs: null };
    if (pipelineOver) return done;
    if (doc.status === "failed") {
      if (index === failedIndex) return { ...pending, state: "failed", detail: doc.error ?? doc.message };
      if (failedIndex >= 0 && index < failedIndex) return done;
      return { ...pending, state: "skipped" };
    }
    if (doc.status === "rejected") {
      return t.duration_ms !== undefined ? done : { ...pending, state: "skipped" };
    }
    if (doc.status === "uploaded") {
      return index === 0 ? { ...pending, detail: doc.message ?? "Queued" } : pending;
    }
    // processing
    if (index < currentIndex) return done;
    if (index > currentIndex) return pending;
    const last = lastFor(events, stage);
    const liveHere = live && live.stage === stage && live.status === "processing" ? live : undefined;
    if (last?.type === "stage.retry" && liveHere?.type !== "stage.started" && liveHere?.type !== "stage.progress") {
      return { ...pending, state: "retrying", detail: last.message ?? "Worker lost — resuming" };
    }
    if (last?.type === "stage.started" || last?.type === "stage.retry" || liveHere || t.started_at) {
      const attempt = (last?.data as { attempt?: number; max_attempts?: number } | undefined) ?? {};
      const suffix =
        last?.type === "stage.started" && (attempt.attempt ?? 0) > 1
          ? ` (attempt ${attempt.attempt} of ${attempt.max_attempts ?? "?"})`
          : "";
      return {
        ...pending,
        state: "running",
        progress: Math.max(liveHere?.progress ?? 0, doc.progress),
        detail: `${liveHere?.message ?? doc.message ?? "Working…"}${suffix}`,
      };
    }
    return { ...pending, detail: doc.message ?? "Queued" };
  });

  let review: TimelineStep = { step: "review", state: "pending", progress: null, detail: null, durationMs: null };
  if (doc.status === "review") review = { ...review, state: "waiting", detail: "Waiting for a reviewer" };
  if (doc.status === "finalised") {
    const approved = lastOf(events, "review.approved");
    review = { ...review, state: "done", detail: approved ? `Approved by ${approved.actor}` : "Approved" };
  }
  if (doc.status === "rejected") {
    const rejected = lastOf(events, "review.rejected");
    review = {
      ...review,
      state: "failed",
      detail: `Rejected${rejected ? ` by ${rejected.actor}` : ""}: ${rejected?.message ?? doc.review_note ?? "no reason given"}`,
    };
  }
  if (doc.status === "failed") review = { ...review, state: "skipped" };

  const exported: TimelineStep = {
    step: "export",
    state: doc.status === "finalised" ? "done" : doc.status === "rejected" || doc.status === "failed" ? "skipped" : "pending",
    progress: null,
    detail: doc.status === "finalised" ? "Included in exports" : null,
    durationMs: null,
  };
  return [...steps, review, exported];
}
