import type { AuditEvent, Document } from "@/lib/api/client";

export function makeDoc(overrides: Partial<Document> = {}): Document {
  return {
    id: "6f1c5d1e-0000-4000-8000-000000000001",
    owner_id: "6f1c5d1e-0000-4000-8000-0000000000aa",
    filename: "invoice.pdf",
    title: null,
    content_type: "application/pdf",
    declared_type: null,
    kind: "pdf",
    size_bytes: 2048,
    sha256: "0".repeat(64),
    status: "processing",
    stage: "extract",
    progress: 30,
    message: "Extracting text…",
    error: null,
    attempts: 1,
    page_count: null,
    word_count: null,
    language: null,
    reading_time_minutes: null,
    summary: null,
    keywords: [],
    fields: {},
    metadata: {},
    category: null,
    category_confidence: null,
    timings: { validate: { started_at: "2026-01-01T10:00:00Z", finished_at: "2026-01-01T10:00:00.2Z", duration_ms: 200 } },
    reviewed_by: null,
    reviewed_at: null,
    review_note: null,
    created_at: "2026-01-01T10:00:00Z",
    updated_at: "2026-01-01T10:00:01Z",
    category_uncertain: false,
    ...overrides,
  };
}

let nextId = 1;
export function makeEvent(overrides: Partial<AuditEvent>): AuditEvent {
  nextId += 1;
  return {
    id: nextId,
    document_id: "6f1c5d1e-0000-4000-8000-000000000001",
    type: "stage.started",
    status: "processing",
    stage: "extract",
    progress: 25,
    message: null,
    data: {},
    actor: "worker:host:1",
    created_at: "2026-01-01T10:00:01Z",
    ...overrides,
  };
}
