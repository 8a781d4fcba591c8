"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useState } from "react";

import { useEventStream, type StreamState } from "@/hooks/useEventStream";
import { api, unwrap, type AuditEvent, type Document } from "@/lib/api/client";
import { liveFrom, type LiveState, type StreamEvent } from "@/lib/live";

export function useDocument(id: string | null) {
  return useQuery<Document>({
    queryKey: ["document", id, "row"],
    queryFn: () => unwrap(api.GET("/api/v1/documents/{document_id}", { params: { path: { document_id: id ?? "" } } })),
    enabled: Boolean(id),
    retry: (count, error) => count < 2 && !(error instanceof Error && "status" in error && (error as { status: number }).status < 500),
  });
}

export function useDocumentEvents(id: string | null) {
  return useQuery<AuditEvent[]>({
    queryKey: ["document", id, "events"],
    queryFn: () =>
      unwrap(api.GET("/api/v1/documents/{document_id}/events", { params: { path: { document_id: id ?? "" } } })),
    enabled: Boolean(id),
  });
}

export function useDocumentText(id: string | null, enabled: boolean) {
  return useQuery<string>({
    queryKey: ["document", id, "text"],
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/documents/{document_id}/text", { params: { path: { document_id: id ?? "" } } })))
        .text,
    enabled: Boolean(id) && enabled,
  });
}

/** The document's own stream: refetch row and audit trail on open and on every event. */
export function useDocumentLive(id: string | null): { state: StreamState; live: LiveState | undefined; seen: StreamEvent[] } {
  const client = useQueryClient();
  const [live, setLive] = useState<LiveState | undefined>(undefined);
  const [seen, setSeen] = useState<StreamEvent[]>([]);

  const refresh = useCallback(() => {
    void client.invalidateQueries({ queryKey: ["document", id] });
  }, [client, id]);

  const onEvent = useCallback(
    (event: StreamEvent) => {
      setLive(liveFrom(event));
      setSeen((prev) => [...prev.slice(-49), event]);
      if (event.id !== null) refresh();
    },
    [refresh],
  );

  const url = id ? `/api/v1/documents/${encodeURIComponent(id)}/stream` : null;
  const state = useEventStream(url, { onOpen: refresh, onEvent });
  return { state, live, seen };
}
