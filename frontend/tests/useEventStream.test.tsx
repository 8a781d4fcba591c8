import { act, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ConnectionBanner } from "@/components/ui";
import { useEventStream } from "@/hooks/useEventStream";
import type { StreamEvent } from "@/lib/live";

class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static instances: FakeEventSource[] = [];
  readyState = FakeEventSource.CONNECTING;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  listeners = new Map<string, ((e: MessageEvent<string>) => void)[]>();
  constructor(public url: string) {
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, fn: (e: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.readyState = FakeEventSource.CLOSED;
  }
  open() {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.();
  }
  emit(type: string, data: unknown) {
    for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
  fail(closed: boolean) {
    this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
    this.onerror?.();
  }
}

function Probe({ onOpen, onEvent }: { onOpen: () => void; onEvent: (e: StreamEvent) => void }) {
  const state = useEventStream("/api/v1/documents/stream", { onOpen, onEvent });
  return <ConnectionBanner state={state} />;
}

describe("useEventStream", () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.stubGlobal("EventSource", FakeEventSource);
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("refetches on open, hands events over, and shows Reconnecting… while the stream is down", () => {
    const onOpen = vi.fn();
    const onEvent = vi.fn();
    render(<Probe onOpen={onOpen} onEvent={onEvent} />);
    const source = FakeEventSource.instances[0]!;
    act(() => source.open());
    expect(screen.getByTestId("live")).toBeInTheDocument();
    expect(onOpen).toHaveBeenCalledTimes(1);

    const event = { id: 7, document_id: "d1", type: "stage.completed", status: "processing", stage: "extract", progress: 50, message: "done", data: {}, created_at: null };
    act(() => source.emit("stage.completed", event));
    expect(onEvent).toHaveBeenCalledWith(event);

    // The browser retries by itself (readyState CONNECTING).
    act(() => source.fail(false));
    expect(screen.getByTestId("reconnecting")).toHaveTextContent("Reconnecting…");
    act(() => source.open());
    expect(screen.queryByTestId("reconnecting")).toBeNull();
    expect(onOpen).toHaveBeenCalledTimes(2);
  });

  it("opens a new connection itself when the browser gives up", async () => {
    render(<Probe onOpen={vi.fn()} onEvent={vi.fn()} />);
    const first = FakeEventSource.instances[0]!;
    act(() => first.open());
    act(() => first.fail(true));
    expect(screen.getByTestId("reconnecting")).toBeInTheDocument();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1500);
    });
    const second = FakeEventSource.instances[1];
    expect(second).toBeDefined();
    act(() => second!.open());
    expect(screen.getByTestId("live")).toBeInTheDocument();
  });
});
