"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";

import { api, unwrap, type ApproveBody, type Document, type Stage } from "@/lib/api/client";

export type ReviewAction =
  | { kind: "approve"; id: string; body: ApproveBody }
  | { kind: "reject"; id: string; reason: string }
  | { kind: "reprocess"; id: string; from_stage: Stage; note?: string };

export function runReview(action: ReviewAction): Promise<Document> {
  const path = { params: { path: { document_id: action.id } } };
  if (action.kind === "approve") return unwrap(api.POST("/api/v1/review/{document_id}/approve", { ...path, body: action.body }));
  if (action.kind === "reject") return unwrap(api.POST("/api/v1/review/{document_id}/reject", { ...path, body: { reason: action.reason } }));
  return unwrap(
    api.POST("/api/v1/review/{document_id}/reprocess", {
      ...path,
      body: { from_stage: action.from_stage, note: action.note || undefined },
    }),
  );
}

export function useReviewAction() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: runReview,
    onSettled: (_data, _error, action) => {
      void client.invalidateQueries({ queryKey: ["documents"] });
      void client.invalidateQueries({ queryKey: ["document", action.id] });
    },
  });
}
