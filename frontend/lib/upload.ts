import { ApiError, toApiError } from "@/lib/api/errors";
import type { Document } from "@/lib/api/client";
import { refreshSession, sessionExpired } from "@/lib/api/session";
import { CSRF_HEADER, csrfToken } from "@/lib/cookies";

export interface UploadProgress {
  loaded: number;
  total: number;
}

function once(file: File, onProgress: (p: UploadProgress) => void, signal?: AbortSignal) {
  // XMLHttpRequest, not fetch: only XHR reports upload progress in every browser.
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/documents");
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    const token = csrfToken();
    if (token) xhr.setRequestHeader(CSRF_HEADER, token);
    xhr.upload.onprogress = (event) => {
      onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : file.size });
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () =>
      reject(new ApiError(0, "network", "The upload was interrupted. Check your connection and try again."));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "Upload cancelled."));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** Uploads one file, reporting byte progress; retries once after a silent session refresh. */
export async function uploadFile(
  file: File,
  onProgress: (p: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<Document> {
  let result = await once(file, onProgress, signal);
  if (result.status === 401) {
    if (!(await refreshSession())) {
      sessionExpired();
      throw toApiError(401, result.body);
    }
    result = await once(file, onProgress, signal);
  }
  if (result.status < 200 || result.status >= 300) throw toApiError(result.status, result.body);
  return result.body as Document;
}
