"""Event infrastructure: persisted log rows, Redis fan-out, the per-process hub, SSE framing."""
