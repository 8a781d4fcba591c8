"use client";

import { useQuery } from "@tanstack/react-query";

import { api, unwrap, type Document } from "@/lib/api/client";

const SIZE = 100;

async function page(page: number, pageSize: number) {
  return unwrap(api.GET("/api/v1/documents", { params: { query: { status: ["review"], page, page_size: pageSize } } }));
}

/**
 * Documents waiting for review, oldest first. The list endpoint sorts newest first, so the oldest
 * sit on its last pages: read the total, then the last two pages, and reverse.
 */
export async function fetchQueue(): Promise<{ items: Document[]; total: number }> {
  const head = await page(1, 1);
  const total = head.total;
  if (total === 0) return { items: [], total };
  const last = Math.ceil(total / SIZE);
  const pages = await Promise.all([last, last - 1].filter((p) => p >= 1).map((p) => page(p, SIZE)));
  const items = pages
    .flatMap((p) => p.items)
    .filter((d) => d.status === "review")
    .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))
    .slice(0, SIZE);
  return { items, total };
}

export function useReviewQueue() {
  return useQuery({ queryKey: ["documents", "review-queue"], queryFn: fetchQueue });
}
