import type { Document } from "@/lib/api/client";

/** One frame of the event stream (persisted events carry an id; live progress does not). */
export interface StreamEvent {
  id: number | null;
  document_id: string;
  owner_id?: string;
  type: string;
  status: string;
  stage: string | null;
  progress: number;
  message: string | null;
  data: Record<string, unknown>;
  actor?: string;
  created_at: string | null;
}

export const EVENT_TYPES = [
  "document.uploaded",
  "stage.started",
  "stage.progress",
  "stage.completed",
  "stage.failed",
  "stage.retry",
  "stage.requeued",
  "document.review",
  "document.failed",
  "review.approved",
  "review.rejected",
  "review.reprocess",
] as const;

export function isStreamEvent(value: unknown): value is StreamEvent {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.document_id === "string" && typeof v.type === "string" && typeof v.status === "string";
}

export interface LiveState {
  status: string;
  stage: string | null;
  progress: number;
  message: string | null;
  type: string;
  at: number;
}

export function liveFrom(event: StreamEvent): LiveState {
  return {
    status: event.status,
    stage: event.stage,
    progress: event.progress,
    message: event.message,
    type: event.type,
    at: event.created_at ? Date.parse(event.created_at) : Date.now(),
  };
}

export type Shown = Pick<Document, "status" | "stage" | "progress" | "message">;

/**
 * What to draw for a document: the database's row, unless an event newer than the row has
 * arrived (its refetch is still on the way, or it is live-only progress the row never holds).
 */
export function shownState(doc: Document, live: LiveState | undefined): Shown {
  const base: Shown = { status: doc.status, stage: doc.stage, progress: doc.progress, message: doc.message };
  if (!live) return base;
  const updated = Date.parse(doc.updated_at);
  if (!Number.isNaN(updated) && live.at < updated) return base;
  return { status: live.status, stage: live.stage, progress: live.progress, message: live.message };
}
