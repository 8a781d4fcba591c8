"use client";

import { useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useEffect, useState, type ReactNode } from "react";

import { ErrorNotice } from "@/components/ui";
import { isReviewer, useMe } from "@/hooks/useMe";
import { ApiError } from "@/lib/api/errors";
import { setSessionExpiredHandler } from "@/lib/api/session";
import { CSRF_HEADER, csrfToken } from "@/lib/cookies";

export async function signOut(): Promise<void> {
  // Requests and streams still open see 401s once the session is gone; they must not send the
  // user to "session expired" instead: the sign-out decides where to go.
  setSessionExpiredHandler(() => {});
  const token = csrfToken();
  try {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: token ? { [CSRF_HEADER]: token } : {},
    });
  } finally {
    window.location.assign("/signin?signed_out=1");
  }
}

function NavLink({ href, children }: { href: string; children: ReactNode }) {
  const path = usePathname();
  const active = path === href || path.startsWith(`${href}/`);
  return (
    <Link
      href={href}
      aria-current={active ? "page" : undefined}
      className={`rounded-md px-3 py-2 text-sm font-medium ${active ? "bg-slate-900 text-white" : "text-slate-700 hover:bg-slate-200"}`}
    >
      {children}
    </Link>
  );
}

/** The signed-in frame: navigation, the user, sign out. Pages render inside it. */
export function AppShell({ children, title }: { children: ReactNode; title: string }) {
  const me = useMe();
  const client = useQueryClient();
  const [leaving, setLeaving] = useState(false);

  useEffect(() => {
    document.title = `${title} · Docflow`;
  }, [title]);

  if (me.isPending) {
    return <p className="p-6 text-slate-700" role="status">Checking your session…</p>;
  }
  if (me.isError) {
    // A 401 has already sent the browser to sign in (after one silent refresh).
    if (me.error instanceof ApiError && me.error.status === 401) {
      return <p className="p-6 text-slate-700" role="status">Redirecting to sign in…</p>;
    }
    return (
      <main className="mx-auto max-w-xl p-6">
        <ErrorNotice error={me.error} title="Docflow cannot load your session" />
      </main>
    );
  }

  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-2 px-4 py-3">
          <Link href="/documents" className="mr-4 text-lg font-bold tracking-tight text-slate-900">
            Docflow
          </Link>
          <nav aria-label="Main" className="flex flex-wrap gap-1">
            <NavLink href="/documents">Documents</NavLink>
            {isReviewer(me.data) ? <NavLink href="/review">Review queue</NavLink> : null}
            <NavLink href="/export">Export</NavLink>
          </nav>
          <div className="ml-auto flex items-center gap-3 text-sm">
            <span className="hidden text-slate-700 sm:inline" data-testid="whoami">
              {me.data.email} <span className="text-slate-500">({me.data.role})</span>
            </span>
            <button
              type="button"
              disabled={leaving}
              onClick={() => {
                setLeaving(true);
                client.clear();
                void signOut();
              }}
              className="rounded-md px-3 py-2 font-medium text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-100"
            >
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">
        <h1 className="mb-4 text-2xl font-bold tracking-tight">{title}</h1>
        {children}
      </main>
    </div>
  );
}
