import type { DocumentFilters } from "@/hooks/useDocuments";

export function exportUrl(format: "json" | "csv", filters: DocumentFilters): string {
  const params = new URLSearchParams({ format });
  if (filters.q) params.set("q", filters.q);
  if (filters.category) params.set("category", filters.category);
  if (filters.created_from) params.set("created_from", filters.created_from);
  if (filters.created_to) params.set("created_to", filters.created_to);
  return `/api/v1/export?${params.toString()}`;
}
