"use client";

import { useEffect, useRef, useState } from "react";

import { refreshSession, sessionExpired } from "@/lib/api/session";
import { EVENT_TYPES, isStreamEvent, type StreamEvent } from "@/lib/live";

export type StreamState = "connecting" | "open" | "reconnecting";

export interface StreamHandlers {
  /** The stream (re)opened: anything may have happened meanwhile, so refetch. */
  onOpen?: () => void;
  onEvent?: (event: StreamEvent) => void;
}

const MAX_BACKOFF_MS = 10_000;

/**
 * An EventSource with an honest connection state. The browser retries dropped connections
 * itself; when it gives up (HTTP error, e.g. an expired session) we refresh the session and
 * open a new one with backoff.
 */
export function useEventStream(url: string | null, handlers: StreamHandlers): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const ref = useRef(handlers);
  ref.current = handlers;

  useEffect(() => {
    if (!url || typeof EventSource === "undefined") return undefined;
    let source: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let stopped = false;
    let opened = false;

    const dispatch = (message: MessageEvent<string>) => {
      try {
        const data: unknown = JSON.parse(message.data);
        if (isStreamEvent(data)) ref.current.onEvent?.(data);
      } catch {
        // A frame we cannot read is only a hint we miss; the next refetch corrects the view.
      }
    };

    const connect = () => {
      if (stopped) return;
      source = new EventSource(url);
      source.onopen = () => {
        failures = 0;
        opened = true;
        setState("open");
        ref.current.onOpen?.();
      };
      source.onerror = () => {
        if (stopped) return;
        setState(opened || failures > 0 ? "reconnecting" : "connecting");
        if (source?.readyState !== EventSource.CLOSED) {
          setState("reconnecting");
          return;
        }
        // The browser gave up (not a 200 text/event-stream): retry ourselves.
        source.close();
        failures += 1;
        setState("reconnecting");
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 5));
        timer = setTimeout(async () => {
          if (failures >= 2 && !(await refreshSession())) {
            sessionExpired();
          }
          connect();
        }, delay);
      };
      source.addEventListener("snapshot", () => ref.current.onOpen?.());
      for (const type of EVENT_TYPES) source.addEventListener(type, dispatch as EventListener);
    };

    setState("connecting");
    connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      source?.close();
    };
  }, [url]);

  return state;
}
