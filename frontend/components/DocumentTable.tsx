"use client";

import Link from "next/link";
import type { ReactNode } from "react";

import { ProgressBar, StatusBadge } from "@/components/ui";
import type { Document } from "@/lib/api/client";
import { formatDate, formatPercent } from "@/lib/format";
import { shownState, type LiveState } from "@/lib/live";

export function DocumentTable({
  documents,
  live,
  selectable,
  selected,
  onToggle,
  actions,
}: {
  documents: Document[];
  live: Record<string, LiveState>;
  selectable?: boolean;
  selected?: Set<string>;
  onToggle?: (id: string) => void;
  actions?: (doc: Document) => ReactNode;
}) {
  return (
    <ul className="divide-y divide-slate-200 rounded-lg bg-white ring-1 ring-slate-200" aria-label="Documents">
      {documents.map((doc) => {
        const shown = shownState(doc, live[doc.id]);
        const tone = shown.status === "failed" || shown.status === "rejected" ? "red" : shown.status === "processing" || shown.status === "uploaded" ? "blue" : "green";
        return (
          <li
            key={doc.id}
            data-testid="document-row"
            data-id={doc.id}
            data-status={shown.status}
            data-stage={shown.stage ?? ""}
            data-filename={doc.filename}
            className="flex flex-col gap-2 p-4 sm:flex-row sm:items-center"
          >
            {selectable ? (
              <input
                type="checkbox"
                className="h-5 w-5"
                aria-label={`Select ${doc.title ?? doc.filename}`}
                checked={selected?.has(doc.id) ?? false}
                onChange={() => onToggle?.(doc.id)}
              />
            ) : null}
            <div className="min-w-0 flex-1">
              <div className="flex flex-wrap items-center gap-2">
                <Link href={`/document?id=${doc.id}`} className="font-semibold text-blue-800 underline-offset-2 hover:underline break-all">
                  {doc.title ?? doc.filename}
                </Link>
                <StatusBadge status={shown.status} />
                {shown.stage ? <span className="text-xs text-slate-600">stage: {shown.stage}</span> : null}
                {doc.category ? (
                  <span className="text-xs text-slate-700">
                    {doc.category} ({formatPercent(doc.category_confidence)}){doc.category_uncertain ? " · uncertain" : ""}
                  </span>
                ) : null}
              </div>
              <p className="mt-1 text-sm text-slate-700" data-testid="row-message">
                {shown.message ?? "—"}
              </p>
              <p className="text-xs text-slate-500">
                {doc.filename} · uploaded {formatDate(doc.created_at)}
              </p>
            </div>
            <div className="w-full sm:w-48">
              <ProgressBar value={shown.progress} label={`Progress of ${doc.filename}`} tone={tone} />
              <p className="mt-1 text-right text-xs text-slate-600">{shown.progress}%</p>
            </div>
            {actions ? <div className="flex flex-wrap gap-2">{actions(doc)}</div> : null}
          </li>
        );
      })}
    </ul>
  );
}
