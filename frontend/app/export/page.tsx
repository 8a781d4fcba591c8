"use client";

import { useState } from "react";

import { AppShell } from "@/components/AppShell";
import { Filters } from "@/components/Filters";
import { Button, ErrorNotice } from "@/components/ui";
import type { DocumentFilters } from "@/hooks/useDocuments";
import { apiFetch } from "@/lib/api/client";
import { errorFromResponse } from "@/lib/api/errors";
import { exportUrl } from "@/lib/exportUrl";

function filenameOf(response: Response, format: string): string {
  const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") ?? "");
  return match?.[1] ?? `docflow-export.${format}`;
}

function ExportView() {
  const [filters, setFilters] = useState<DocumentFilters>({});
  const [format, setFormat] = useState<"json" | "csv">("csv");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);

  const download = async () => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      // Fetched (not a plain link) so that an API error shows as a message, not a raw JSON page.
      const response = await apiFetch(new Request(new URL(exportUrl(format, filters), window.location.origin)));
      if (!response.ok) throw await errorFromResponse(response);
      const blob = await response.blob();
      const name = filenameOf(response, format);
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setDone(`Downloaded ${name}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="space-y-4">
      <p className="text-sm text-slate-700">Finalised documents matching these filters, as one file.</p>
      <Filters value={filters} onChange={setFilters} showStatus={false} />
      <fieldset className="flex gap-4">
        <legend className="mb-1 text-sm font-medium">Format</legend>
        {(["csv", "json"] as const).map((f) => (
          <label key={f} className="flex items-center gap-2 text-sm">
            <input type="radio" name="format" value={f} checked={format === f} onChange={() => setFormat(f)} className="h-4 w-4" />
            {f.toUpperCase()}
          </label>
        ))}
      </fieldset>
      <Button onClick={() => void download()} disabled={busy}>
        {busy ? "Preparing…" : `Download ${format.toUpperCase()}`}
      </Button>
      {done ? (
        <p role="status" className="text-sm text-emerald-900">
          {done}
        </p>
      ) : null}
      <ErrorNotice error={error} title="The export failed" />
    </div>
  );
}

export default function ExportPage() {
  return (
    <AppShell title="Export">
      <ExportView />
    </AppShell>
  );
}
