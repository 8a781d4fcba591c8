"use client";

import { useId, useState, type FormEvent } from "react";

import { Button, ErrorNotice, inputClass } from "@/components/ui";
import { useReviewAction } from "@/hooks/useReview";
import type { Document, Stage } from "@/lib/api/client";
import { CATEGORIES, STAGES } from "@/lib/constants";

/** Approve (with optional corrections), reject (reason required) or reprocess one document. */
export function ReviewForms({ doc, onDone }: { doc: Document; onDone?: (message: string) => void }) {
  const id = useId();
  const action = useReviewAction();
  const [mode, setMode] = useState<"approve" | "reject" | "reprocess" | null>(null);
  const [category, setCategory] = useState(doc.category ?? "");
  const [title, setTitle] = useState(doc.title ?? "");
  const [keywords, setKeywords] = useState(doc.keywords.join(", "));
  const [note, setNote] = useState("");
  const [reason, setReason] = useState("");
  const [stage, setStage] = useState<Stage>("validate");
  const [missing, setMissing] = useState(false);

  const canApprove = doc.status === "review";
  const canReject = doc.status === "review" || doc.status === "processing";
  const canReprocess = ["review", "failed", "rejected"].includes(doc.status);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      if (mode === "approve") {
        const words = keywords.split(",").map((k) => k.trim()).filter(Boolean);
        const changed = words.join(",") !== doc.keywords.join(",");
        await action.mutateAsync({
          kind: "approve",
          id: doc.id,
          body: {
            category: category && category !== doc.category ? category : undefined,
            title: title && title !== (doc.title ?? "") ? title : undefined,
            keywords: changed ? words : undefined,
            note: note || undefined,
          },
        });
        onDone?.("Approved");
      } else if (mode === "reject") {
        if (!reason.trim()) {
          setMissing(true);
          return;
        }
        await action.mutateAsync({ kind: "reject", id: doc.id, reason: reason.trim() });
        onDone?.("Rejected");
      } else if (mode === "reprocess") {
        await action.mutateAsync({ kind: "reprocess", id: doc.id, from_stage: stage, note });
        onDone?.(`Reprocessing from ${stage}`);
      }
      setMode(null);
    } catch {
      // The error is shown from the mutation state below.
    }
  };

  return (
    <div className="space-y-3">
      <div className="flex flex-wrap gap-2">
        <Button disabled={!canApprove} onClick={() => setMode(mode === "approve" ? null : "approve")} aria-expanded={mode === "approve"}>
          Approve…
        </Button>
        <Button variant="danger" disabled={!canReject} onClick={() => setMode(mode === "reject" ? null : "reject")} aria-expanded={mode === "reject"}>
          Reject…
        </Button>
        <Button variant="secondary" disabled={!canReprocess} onClick={() => setMode(mode === "reprocess" ? null : "reprocess")} aria-expanded={mode === "reprocess"}>
          Reprocess…
        </Button>
      </div>
      <ErrorNotice error={action.error} title="The action did not go through" />
      {mode ? (
        <form onSubmit={submit} className="space-y-3 rounded-md bg-slate-50 p-3 ring-1 ring-slate-200" aria-label={`${mode} ${doc.filename}`}>
          {mode === "approve" ? (
            <>
              <div>
                <label htmlFor={`${id}-cat`} className="mb-1 block text-sm font-medium">Category</label>
                <select id={`${id}-cat`} value={category} onChange={(e) => setCategory(e.target.value)} className={inputClass}>
                  {[...new Set([...(doc.category ? [doc.category] : []), ...CATEGORIES])].map((c) => (
                    <option key={c} value={c}>{c}</option>
                  ))}
                </select>
              </div>
              <div>
                <label htmlFor={`${id}-title`} className="mb-1 block text-sm font-medium">Title</label>
                <input id={`${id}-title`} value={title} onChange={(e) => setTitle(e.target.value)} className={inputClass} />
              </div>
              <div>
                <label htmlFor={`${id}-kw`} className="mb-1 block text-sm font-medium">Keywords (comma-separated)</label>
                <input id={`${id}-kw`} value={keywords} onChange={(e) => setKeywords(e.target.value)} className={inputClass} />
              </div>
              <div>
                <label htmlFor={`${id}-note`} className="mb-1 block text-sm font-medium">Note (optional)</label>
                <input id={`${id}-note`} value={note} onChange={(e) => setNote(e.target.value)} className={inputClass} />
              </div>
              <Button type="submit" disabled={action.isPending}>Confirm approval</Button>
            </>
          ) : null}
          {mode === "reject" ? (
            <>
              <div>
                <label htmlFor={`${id}-reason`} className="mb-1 block text-sm font-medium">Reason (required)</label>
                <textarea
                  id={`${id}-reason`}
                  value={reason}
                  onChange={(e) => {
                    setReason(e.target.value);
                    setMissing(false);
                  }}
                  aria-invalid={missing}
                  aria-describedby={missing ? `${id}-reason-error` : undefined}
                  className={inputClass}
                  rows={2}
                />
                {missing ? (
                  <p id={`${id}-reason-error`} role="alert" className="mt-1 text-sm text-red-800">
                    Give a reason: the uploader will read it.
                  </p>
                ) : null}
              </div>
              <Button type="submit" variant="danger" disabled={action.isPending}>Confirm rejection</Button>
            </>
          ) : null}
          {mode === "reprocess" ? (
            <>
              <div>
                <label htmlFor={`${id}-stage`} className="mb-1 block text-sm font-medium">Start from stage</label>
                <select id={`${id}-stage`} value={stage} onChange={(e) => setStage(e.target.value as Stage)} className={inputClass}>
                  {STAGES.map((s) => (
                    <option key={s} value={s}>{s}</option>
                  ))}
                </select>
              </div>
              <div>
                <label htmlFor={`${id}-rnote`} className="mb-1 block text-sm font-medium">Note (optional)</label>
                <input id={`${id}-rnote`} value={note} onChange={(e) => setNote(e.target.value)} className={inputClass} />
              </div>
              <Button type="submit" variant="secondary" disabled={action.isPending}>Confirm reprocess</Button>
            </>
          ) : null}
        </form>
      ) : null}
    </div>
  );
}
