"use client";

import type { ReactNode } from "react";

import { messageOf } from "@/lib/api/errors";

const STATUS_STYLE: Record<string, string> = {
  uploaded: "bg-slate-100 text-slate-800 ring-slate-300",
  processing: "bg-blue-50 text-blue-800 ring-blue-300",
  review: "bg-amber-50 text-amber-900 ring-amber-300",
  finalised: "bg-emerald-50 text-emerald-800 ring-emerald-300",
  rejected: "bg-rose-50 text-rose-800 ring-rose-300",
  failed: "bg-red-100 text-red-800 ring-red-300",
};

const STATUS_LABEL: Record<string, string> = {
  uploaded: "Queued",
  processing: "Processing",
  review: "In review",
  finalised: "Finalised",
  rejected: "Rejected",
  failed: "Failed",
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <span
      data-testid="status-badge"
      data-status={status}
      className={`inline-flex items-center rounded-full px-2 py-0.5 text-xs font-semibold ring-1 ring-inset ${STATUS_STYLE[status] ?? STATUS_STYLE.uploaded}`}
    >
      {STATUS_LABEL[status] ?? status}
    </span>
  );
}

export function ProgressBar({ value, label, tone = "blue" }: { value: number; label: string; tone?: "blue" | "red" | "green" }) {
  const clamped = Math.max(0, Math.min(100, Math.round(value)));
  const colour = tone === "red" ? "bg-red-600" : tone === "green" ? "bg-emerald-600" : "bg-blue-600";
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={clamped}
      className="h-2 w-full overflow-hidden rounded-full bg-slate-200"
    >
      <div className={`h-full ${colour} transition-[width] duration-300`} style={{ width: `${clamped}%` }} />
    </div>
  );
}

export function ErrorNotice({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      {title ? <p className="font-semibold">{title}</p> : null}
      <p>{messageOf(error)}</p>
    </div>
  );
}

export function ConnectionBanner({ state }: { state: "connecting" | "open" | "reconnecting" }) {
  return (
    <div role="status" aria-live="polite" className="min-h-6">
      {state === "reconnecting" ? (
        <p
          data-testid="reconnecting"
          className="inline-flex items-center gap-2 rounded-md bg-amber-100 px-3 py-1 text-sm font-medium text-amber-900"
        >
          <span aria-hidden="true" className="h-2 w-2 animate-pulse rounded-full bg-amber-600" />
          Reconnecting… live updates paused; the page will catch up.
        </p>
      ) : state === "open" ? (
        <p data-testid="live" className="inline-flex items-center gap-2 text-sm text-emerald-800">
          <span aria-hidden="true" className="h-2 w-2 rounded-full bg-emerald-600" />
          Live
        </p>
      ) : (
        <p className="text-sm text-slate-600">Connecting to live updates…</p>
      )}
    </div>
  );
}

export function Button({
  children,
  variant = "primary",
  className = "",
  ...props
}: React.ButtonHTMLAttributes<HTMLButtonElement> & { variant?: "primary" | "secondary" | "danger"; children: ReactNode }) {
  const styles = {
    primary: "bg-blue-700 text-white hover:bg-blue-800 disabled:bg-blue-300",
    secondary: "bg-white text-slate-900 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 disabled:text-slate-400",
    danger: "bg-red-700 text-white hover:bg-red-800 disabled:bg-red-300",
  }[variant];
  return (
    <button
      type="button"
      className={`inline-flex min-h-10 items-center justify-center rounded-md px-3 py-2 text-sm font-semibold ${styles} ${className}`}
      {...props}
    >
      {children}
    </button>
  );
}

export const inputClass =
  "block w-full rounded-md border border-slate-400 bg-white px-3 py-2 text-sm text-slate-900 placeholder:text-slate-500";
