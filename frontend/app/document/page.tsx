"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useMemo, useState } from "react";

import { AppShell } from "@/components/AppShell";
import { ReviewForms } from "@/components/ReviewForms";
import { Timeline } from "@/components/Timeline";
import { ConnectionBanner, ErrorNotice, StatusBadge } from "@/components/ui";
import { useDocument, useDocumentEvents, useDocumentLive, useDocumentText } from "@/hooks/useDocument";
import { isReviewer, useMe } from "@/hooks/useMe";
import { formatBytes, formatDate, formatPercent } from "@/lib/format";
import { shownState } from "@/lib/live";
import { buildTimeline } from "@/lib/timeline";

const PREVIEW_CHARS = 4000;

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section className="rounded-lg bg-white p-4 ring-1 ring-slate-200" aria-label={title}>
      <h2 className="mb-2 text-lg font-semibold">{title}</h2>
      {children}
    </section>
  );
}

function DocumentView({ id }: { id: string }) {
  const me = useMe();
  const doc = useDocument(id);
  const events = useDocumentEvents(id);
  const { state, live } = useDocumentLive(id);
  const hasText = Boolean(doc.data && (doc.data.word_count ?? 0) > 0);
  const text = useDocumentText(id, hasText);
  const [notice, setNotice] = useState<string | null>(null);

  const steps = useMemo(
    () => (doc.data ? buildTimeline(doc.data, events.data ?? [], live) : []),
    [doc.data, events.data, live],
  );

  if (doc.isPending) return <p role="status">Loading the document…</p>;
  // A failed refetch keeps the last good data on screen, with the reason beside it.
  if (!doc.data) return <ErrorNotice error={doc.error} title="This document could not be loaded" />;
  const d = doc.data;
  const shown = shownState(d, live);

  return (
    <div className="space-y-4" data-testid="document" data-status={shown.status}>
      <div className="flex flex-wrap items-center gap-3">
        <h2 className="text-xl font-semibold break-all">{d.title ?? d.filename}</h2>
        <StatusBadge status={shown.status} />
        <ConnectionBanner state={state} />
      </div>
      {doc.isError ? <ErrorNotice error={doc.error} title="Could not refresh this document" /> : null}
      <p className="text-sm text-slate-700" data-testid="document-message">
        {shown.message ?? ""}
      </p>
      {notice ? (
        <p role="status" className="rounded-md bg-emerald-50 p-2 text-sm text-emerald-900">
          {notice}
        </p>
      ) : null}
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-3">
        <div className="space-y-4 lg:col-span-1">
          <Section title="Stages">
            <Timeline steps={steps} />
          </Section>
          {isReviewer(me.data) ? (
            <Section title="Review">
              <ReviewForms key={`${d.id}-${d.status}`} doc={d} onDone={setNotice} />
            </Section>
          ) : null}
        </div>
        <div className="space-y-4 lg:col-span-2">
          <Section title="Analysis">
            <dl className="grid grid-cols-1 gap-x-4 gap-y-2 text-sm sm:grid-cols-2">
              <div>
                <dt className="font-medium text-slate-600">Category</dt>
                <dd data-testid="category">
                  {d.category ? (
                    <>
                      {d.category} · {formatPercent(d.category_confidence)} confidence
                      {d.category_uncertain ? (
                        <span className="ml-2 rounded bg-amber-100 px-1.5 py-0.5 text-xs font-semibold text-amber-900">uncertain</span>
                      ) : null}
                    </>
                  ) : (
                    "Not yet categorised"
                  )}
                </dd>
              </div>
              <div>
                <dt className="font-medium text-slate-600">File</dt>
                <dd className="break-all">
                  {d.filename} · {formatBytes(d.size_bytes)} {d.kind ? `· ${d.kind}` : ""}
                </dd>
              </div>
              <div>
                <dt className="font-medium text-slate-600">Pages · words · language</dt>
                <dd>
                  {d.page_count ?? "—"} · {d.word_count ?? "—"} · {d.language ?? "—"}
                </dd>
              </div>
              <div>
                <dt className="font-medium text-slate-600">Uploaded</dt>
                <dd>{formatDate(d.created_at)}</dd>
              </div>
            </dl>
            <h3 className="mt-4 text-sm font-medium text-slate-600">Summary</h3>
            <p className="text-sm" data-testid="summary">
              {d.summary ?? "No summary yet."}
            </p>
            <h3 className="mt-4 text-sm font-medium text-slate-600">Keywords</h3>
            {d.keywords.length ? (
              <ul className="mt-1 flex flex-wrap gap-1" aria-label="Keywords">
                {d.keywords.map((k) => (
                  <li key={k} className="rounded-full bg-slate-100 px-2 py-0.5 text-xs text-slate-800">
                    {k}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="text-sm text-slate-600">No keywords yet.</p>
            )}
          </Section>
          <Section title="Text preview">
            {!hasText ? (
              <p className="text-sm text-slate-600">No text extracted yet.</p>
            ) : text.isError ? (
              <ErrorNotice error={text.error} />
            ) : text.data === undefined ? (
              <p role="status" className="text-sm">Loading text…</p>
            ) : (
              <pre className="max-h-80 overflow-auto whitespace-pre-wrap rounded bg-slate-50 p-3 font-mono text-xs text-slate-900" tabIndex={0} aria-label="Extracted text">
                {text.data.slice(0, PREVIEW_CHARS)}
                {text.data.length > PREVIEW_CHARS ? `\n… ${text.data.length - PREVIEW_CHARS} more characters` : ""}
              </pre>
            )}
          </Section>
          <Section title="Audit trail">
            <ErrorNotice error={events.error} />
            <ol className="space-y-2 text-sm" data-testid="audit">
              {(events.data ?? []).map((e) => (
                <li key={e.id} className="border-l-2 border-slate-300 pl-3">
                  <p>
                    <span className="font-medium">{e.type}</span>
                    {e.stage ? <span className="text-slate-600"> · {e.stage}</span> : null} ·{" "}
                    <span className="text-slate-700">{e.actor}</span> ·{" "}
                    <time dateTime={e.created_at} className="text-slate-600">{formatDate(e.created_at)}</time>
                  </p>
                  {e.message ? <p className="text-slate-800">{e.message}</p> : null}
                </li>
              ))}
            </ol>
          </Section>
        </div>
      </div>
    </div>
  );
}

function DocumentFromQuery() {
  const params = useSearchParams();
  const id = params.get("id");
  if (!id) {
    return (
      <p>
        No document chosen. <Link href="/documents" className="text-blue-700 underline">Back to documents</Link>
      </p>
    );
  }
  return <DocumentView key={id} id={id} />;
}

export default function DocumentPage() {
  return (
    <AppShell title="Document">
      <p className="mb-3 text-sm">
        <Link href="/documents" className="text-blue-700 underline">← All documents</Link>
      </p>
      <Suspense fallback={<p role="status">Loading…</p>}>
        <DocumentFromQuery />
      </Suspense>
    </AppShell>
  );
}
