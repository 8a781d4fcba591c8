"use client";

import { useState } from "react";

import { AppShell } from "@/components/AppShell";
import { DocumentTable } from "@/components/DocumentTable";
import { Filters } from "@/components/Filters";
import { Pagination } from "@/components/Pagination";
import { UploadPanel } from "@/components/UploadPanel";
import { ConnectionBanner, ErrorNotice } from "@/components/ui";
import { isReviewer, useMe } from "@/hooks/useMe";
import { useDocumentList, useDocumentsLive, type DocumentFilters } from "@/hooks/useDocuments";

function DocumentsView() {
  const [filters, setFilters] = useState<DocumentFilters>({ page: 1, page_size: 20 });
  const list = useDocumentList(filters);
  const me = useMe();
  const { state, live } = useDocumentsLive();
  const filtered = Boolean(filters.q || filters.status?.length || filters.category || filters.created_from || filters.created_to);

  return (
    <>
      <UploadPanel />
      <div className="mb-2 flex flex-wrap items-center justify-between gap-2">
        <h2 className="text-lg font-semibold">{isReviewer(me.data) ? "All documents" : "Your documents"}</h2>
        <ConnectionBanner state={state} />
      </div>
      <Filters value={filters} onChange={setFilters} />
      <ErrorNotice error={list.error} title="The list could not be loaded" />
      {list.isPending ? (
        <p role="status" className="text-slate-700">
          Loading documents…
        </p>
      ) : list.data && list.data.items.length === 0 ? (
        <div className="rounded-lg bg-white p-8 text-center ring-1 ring-slate-200" data-testid="empty">
          <p className="font-medium">{filtered ? "No documents match these filters." : "No documents yet."}</p>
          <p className="text-sm text-slate-600">
            {filtered ? "Clear a filter to see more." : "Upload a file above and watch every stage as it happens."}
          </p>
        </div>
      ) : list.data ? (
        <>
          <DocumentTable documents={list.data.items} live={live} />
          <Pagination
            page={list.data.page}
            pageSize={list.data.page_size}
            total={list.data.total}
            onPage={(page) => setFilters({ ...filters, page })}
          />
        </>
      ) : null}
    </>
  );
}

export default function DocumentsPage() {
  return (
    <AppShell title="Documents">
      <DocumentsView />
    </AppShell>
  );
}
