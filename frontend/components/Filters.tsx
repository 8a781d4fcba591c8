"use client";

import { useEffect, useId, useState } from "react";

import { inputClass } from "@/components/ui";
import type { DocumentFilters } from "@/hooks/useDocuments";
import type { Status } from "@/lib/api/client";
import { CATEGORIES, STATUSES } from "@/lib/constants";

/** Search, status, category and date filters shared by the list and the export. */
export function Filters({
  value,
  onChange,
  showStatus = true,
  showSearch = true,
}: {
  value: DocumentFilters;
  onChange: (next: DocumentFilters) => void;
  showStatus?: boolean;
  showSearch?: boolean;
}) {
  const id = useId();
  const [q, setQ] = useState(value.q ?? "");

  // Search as the user types, without a request per keystroke.
  useEffect(() => {
    const timer = setTimeout(() => {
      if ((value.q ?? "") !== q) onChange({ ...value, q, page: 1 });
    }, 300);
    return () => clearTimeout(timer);
  }, [q, value, onChange]);

  return (
    <form role="search" className="mb-4 grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-5" onSubmit={(e) => e.preventDefault()}>
      {showSearch ? (
        <div className="lg:col-span-2">
          <label htmlFor={`${id}-q`} className="mb-1 block text-sm font-medium">
            Search
          </label>
          <input
            id={`${id}-q`}
            type="search"
            placeholder="Name or content"
            value={q}
            onChange={(e) => setQ(e.target.value)}
            className={inputClass}
          />
        </div>
      ) : null}
      {showStatus ? (
        <div>
          <label htmlFor={`${id}-status`} className="mb-1 block text-sm font-medium">
            Status
          </label>
          <select
            id={`${id}-status`}
            value={value.status?.[0] ?? ""}
            onChange={(e) => onChange({ ...value, status: e.target.value ? [e.target.value as Status] : undefined, page: 1 })}
            className={inputClass}
          >
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <div>
        <label htmlFor={`${id}-category`} className="mb-1 block text-sm font-medium">
          Category
        </label>
        <select
          id={`${id}-category`}
          value={value.category ?? ""}
          onChange={(e) => onChange({ ...value, category: e.target.value || undefined, page: 1 })}
          className={inputClass}
        >
          <option value="">Any category</option>
          {CATEGORIES.map((c) => (
            <option key={c} value={c}>
              {c.replace("_", " ")}
            </option>
          ))}
        </select>
      </div>
      <div className="grid grid-cols-2 gap-2">
        <div>
          <label htmlFor={`${id}-from`} className="mb-1 block text-sm font-medium">
            From
          </label>
          <input
            id={`${id}-from`}
            type="date"
            value={value.created_from?.slice(0, 10) ?? ""}
            onChange={(e) => onChange({ ...value, created_from: e.target.value ? `${e.target.value}T00:00:00` : undefined, page: 1 })}
            className={inputClass}
          />
        </div>
        <div>
          <label htmlFor={`${id}-to`} className="mb-1 block text-sm font-medium">
            To
          </label>
          <input
            id={`${id}-to`}
            type="date"
            value={value.created_to?.slice(0, 10) ?? ""}
            onChange={(e) => onChange({ ...value, created_to: e.target.value ? `${e.target.value}T23:59:59` : undefined, page: 1 })}
            className={inputClass}
          />
        </div>
      </div>
    </form>
  );
}
