"use client";

import { useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useCallback, useId, useRef, useState, type DragEvent } from "react";

import { ProgressBar } from "@/components/ui";
import { messageOf } from "@/lib/api/errors";
import { formatBytes } from "@/lib/format";
import { uploadFile } from "@/lib/upload";

interface UploadItem {
  key: string;
  name: string;
  size: number;
  loaded: number;
  state: "uploading" | "done" | "error";
  error?: string;
  documentId?: string;
}

/** Drag-and-drop (or pick) several files; each shows its own byte progress and outcome. */
export function UploadPanel() {
  const client = useQueryClient();
  const inputId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [items, setItems] = useState<UploadItem[]>([]);
  const [dragging, setDragging] = useState(false);

  const update = (key: string, patch: Partial<UploadItem>) =>
    setItems((prev) => prev.map((item) => (item.key === key ? { ...item, ...patch } : item)));

  const start = useCallback(
    (files: FileList | File[]) => {
      const list = Array.from(files);
      const fresh = list.map((file, index) => ({
        key: `${Date.now()}-${index}-${file.name}`,
        name: file.name,
        size: file.size,
        loaded: 0,
        state: "uploading" as const,
      }));
      setItems((prev) => [...fresh, ...prev].slice(0, 20));
      list.forEach((file, index) => {
        const key = fresh[index]!.key;
        uploadFile(file, (p) => update(key, { loaded: p.loaded, size: p.total || file.size }))
          .then((doc) => {
            update(key, { state: "done", loaded: file.size, documentId: doc.id });
            void client.invalidateQueries({ queryKey: ["documents"] });
          })
          .catch((error: unknown) => update(key, { state: "error", error: messageOf(error) }));
      });
    },
    [client],
  );

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer.files.length) start(event.dataTransfer.files);
  };

  return (
    <section aria-labelledby={`${inputId}-title`} className="mb-6">
      <h2 id={`${inputId}-title`} className="sr-only">
        Upload
      </h2>
      <div
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        data-testid="dropzone"
        className={`flex flex-col items-center justify-center gap-2 rounded-lg border-2 border-dashed p-6 text-center ${dragging ? "border-blue-600 bg-blue-50" : "border-slate-400 bg-white"}`}
      >
        <p className="text-sm text-slate-700">Drop PDF, DOCX, ODT, HTML, text or image files here, or</p>
        <label
          htmlFor={inputId}
          className="cursor-pointer rounded-md bg-blue-700 px-3 py-2 text-sm font-semibold text-white hover:bg-blue-800 focus-within:outline focus-within:outline-3 focus-within:outline-blue-600"
        >
          Choose files
          <input
            id={inputId}
            ref={input}
            type="file"
            multiple
            className="sr-only"
            aria-label="Choose files to upload"
            onChange={(e) => {
              if (e.target.files?.length) start(e.target.files);
              e.target.value = "";
            }}
          />
        </label>
      </div>
      {items.length ? (
        <ul className="mt-3 space-y-2" aria-label="Uploads">
          {items.map((item) => (
            <li key={item.key} className="rounded-md bg-white p-3 text-sm ring-1 ring-slate-200" data-testid="upload-item">
              <div className="mb-1 flex flex-wrap items-center justify-between gap-2">
                <span className="font-medium break-all">{item.name}</span>
                <span className="text-slate-600">
                  {item.state === "uploading"
                    ? `${formatBytes(item.loaded)} of ${formatBytes(item.size)}`
                    : item.state === "done"
                      ? "Uploaded"
                      : "Upload failed"}
                </span>
              </div>
              {item.state === "error" ? (
                <p role="alert" className="text-red-800">
                  {item.error}
                </p>
              ) : (
                <ProgressBar
                  value={item.size ? (item.loaded / item.size) * 100 : 0}
                  label={`Upload of ${item.name}`}
                  tone={item.state === "done" ? "green" : "blue"}
                />
              )}
              {item.documentId ? (
                <Link href={`/document?id=${item.documentId}`} className="mt-1 inline-block text-blue-700 underline">
                  Follow it
                </Link>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
