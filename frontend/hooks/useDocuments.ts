"use client";

import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useRef, useState } from "react";

import { useEventStream, type StreamState } from "@/hooks/useEventStream";
import { api, unwrap, type DocumentPage, type Status } from "@/lib/api/client";
import { liveFrom, type LiveState, type StreamEvent } from "@/lib/live";

export interface DocumentFilters {
  q?: string;
  status?: Status[];
  category?: string;
  created_from?: string;
  created_to?: string;
  page?: number;
  page_size?: number;
}

export function useDocumentList(filters: DocumentFilters) {
  return useQuery<DocumentPage>({
    queryKey: ["documents", filters],
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/documents", {
          params: {
            query: {
              q: filters.q || undefined,
              status: filters.status?.length ? filters.status : undefined,
              category: filters.category || undefined,
              created_from: filters.created_from || undefined,
              created_to: filters.created_to || undefined,
              page: filters.page ?? 1,
              page_size: filters.page_size ?? 25,
            },
          },
          querySerializer: { array: { style: "form", explode: true } },
        }),
      ),
    placeholderData: keepPreviousData,
  });
}

/**
 * The user's documents stream: each event refreshes the lists (debounced, the database is the
 * truth) and its details are painted at once through `live`.
 */
export function useDocumentsLive(): { state: StreamState; live: Record<string, LiveState> } {
  const client = useQueryClient();
  const [live, setLive] = useState<Record<string, LiveState>>({});
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const refresh = useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      void client.invalidateQueries({ queryKey: ["documents"] });
    }, 150);
  }, [client]);

  const onEvent = useCallback(
    (event: StreamEvent) => {
      setLive((prev) => ({ ...prev, [event.document_id]: liveFrom(event) }));
      if (event.id !== null) {
        refresh();
        void client.invalidateQueries({ queryKey: ["document", event.document_id] });
      }
    },
    [client, refresh],
  );

  const state = useEventStream("/api/v1/documents/stream", { onOpen: refresh, onEvent });
  return { state, live };
}
