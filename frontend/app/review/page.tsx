"use client";

import { useState } from "react";

import { AppShell } from "@/components/AppShell";
import { DocumentTable } from "@/components/DocumentTable";
import { ReviewForms } from "@/components/ReviewForms";
import { Button, ConnectionBanner, ErrorNotice, inputClass } from "@/components/ui";
import { useDocumentsLive } from "@/hooks/useDocuments";
import { isReviewer, useMe } from "@/hooks/useMe";
import { useReviewAction } from "@/hooks/useReview";
import { useReviewQueue } from "@/hooks/useReviewQueue";
import { messageOf } from "@/lib/api/errors";

function ReviewQueue() {
  const queue = useReviewQueue();
  const { state, live } = useDocumentsLive();
  const action = useReviewAction();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [open, setOpen] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [reasonMissing, setReasonMissing] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: number; failed: string[] } | null>(null);
  const [busy, setBusy] = useState(false);

  const items = queue.data?.items ?? [];
  const toggle = (id: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const bulk = async (kind: "approve" | "reject") => {
    if (kind === "reject" && !reason.trim()) {
      setReasonMissing(true);
      return;
    }
    setBusy(true);
    const failed: string[] = [];
    let ok = 0;
    for (const id of selected) {
      const name = items.find((d) => d.id === id)?.filename ?? id;
      try {
        await action.mutateAsync(
          kind === "approve" ? { kind, id, body: {} } : { kind, id, reason: reason.trim() },
        );
        ok += 1;
      } catch (error) {
        failed.push(`${name}: ${messageOf(error)}`);
      }
    }
    setOutcome({ ok, failed });
    setSelected(new Set());
    setBusy(false);
  };

  return (
    <>
      <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
        <p className="text-sm text-slate-700">
          {queue.data ? `${queue.data.total} waiting, oldest first` : ""}
        </p>
        <ConnectionBanner state={state} />
      </div>
      <ErrorNotice error={queue.error} title="The queue could not be loaded" />
      <div className="mb-4 rounded-lg bg-white p-3 ring-1 ring-slate-200" aria-label="Bulk actions" role="group">
        <p className="mb-2 text-sm font-medium">{selected.size} selected</p>
        <div className="flex flex-col gap-2 sm:flex-row sm:items-end">
          <Button disabled={!selected.size || busy} onClick={() => void bulk("approve")}>
            Approve selected
          </Button>
          <div className="flex-1">
            <label htmlFor="bulk-reason" className="mb-1 block text-sm font-medium">
              Reason for rejecting the selection
            </label>
            <input
              id="bulk-reason"
              value={reason}
              onChange={(e) => {
                setReason(e.target.value);
                setReasonMissing(false);
              }}
              aria-invalid={reasonMissing}
              className={inputClass}
            />
          </div>
          <Button variant="danger" disabled={!selected.size || busy} onClick={() => void bulk("reject")}>
            Reject selected
          </Button>
        </div>
        {reasonMissing ? (
          <p role="alert" className="mt-1 text-sm text-red-800">
            A reason is required to reject.
          </p>
        ) : null}
        {outcome ? (
          <div role="status" className="mt-2 text-sm">
            <p>{outcome.ok} done{outcome.failed.length ? `, ${outcome.failed.length} failed:` : "."}</p>
            <ul className="list-disc pl-5 text-red-800">
              {outcome.failed.map((f) => (
                <li key={f}>{f}</li>
              ))}
            </ul>
          </div>
        ) : null}
      </div>
      {queue.isPending ? (
        <p role="status">Loading the queue…</p>
      ) : items.length === 0 ? (
        <div className="rounded-lg bg-white p-8 text-center ring-1 ring-slate-200" data-testid="empty">
          <p className="font-medium">Nothing is waiting for review.</p>
        </div>
      ) : (
        <DocumentTable
          documents={items}
          live={live}
          selectable
          selected={selected}
          onToggle={toggle}
          actions={(doc) =>
            open === doc.id ? (
              <div className="w-full sm:w-96">
                <ReviewForms doc={doc} onDone={() => setOpen(null)} />
                <Button variant="secondary" className="mt-2" onClick={() => setOpen(null)}>
                  Close
                </Button>
              </div>
            ) : (
              <Button variant="secondary" onClick={() => setOpen(doc.id)} aria-label={`Review ${doc.filename}`}>
                Review
              </Button>
            )
          }
        />
      )}
    </>
  );
}

function Gate() {
  const me = useMe();
  if (!isReviewer(me.data)) {
    return <ErrorNotice error={new Error("Only reviewers and admins can see the review queue.")} />;
  }
  return <ReviewQueue />;
}

export default function ReviewPage() {
  return (
    <AppShell title="Review queue">
      <Gate />
    </AppShell>
  );
}
