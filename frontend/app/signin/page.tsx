"use client";

import { useSearchParams } from "next/navigation";
import { Suspense, useState, type FormEvent } from "react";

import { Button, ErrorNotice, inputClass } from "@/components/ui";
import { api, unwrap } from "@/lib/api/client";

function safeNext(value: string | null): string {
  // Only same-site paths: never bounce a signed-in user to another origin.
  return value && value.startsWith("/") && !value.startsWith("//") ? value : "/documents";
}

function SignInForm() {
  const params = useSearchParams();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST("/api/v1/auth/login", { body: { email, password } }));
      window.location.assign(safeNext(params.get("next")));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      {params.get("expired") ? (
        <p role="status" className="rounded-md bg-amber-100 p-3 text-sm font-medium text-amber-900">
          Your session expired. Sign in again to continue.
        </p>
      ) : null}
      {params.get("signed_out") ? (
        <p role="status" className="rounded-md bg-slate-100 p-3 text-sm text-slate-800">
          You are signed out.
        </p>
      ) : null}
      <ErrorNotice error={error} />
      <div>
        <label htmlFor="email" className="mb-1 block text-sm font-medium">
          Email
        </label>
        <input
          id="email"
          type="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          className={inputClass}
        />
      </div>
      <div>
        <label htmlFor="password" className="mb-1 block text-sm font-medium">
          Password
        </label>
        <input
          id="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          className={inputClass}
        />
      </div>
      <Button type="submit" disabled={busy} className="w-full">
        {busy ? "Signing in…" : "Sign in"}
      </Button>
    </form>
  );
}

export default function SignInPage() {
  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <div className="w-full max-w-sm rounded-lg bg-white p-6 shadow ring-1 ring-slate-200">
        <h1 className="mb-1 text-2xl font-bold tracking-tight">Sign in to Docflow</h1>
        <p className="mb-6 text-sm text-slate-600">Documents from upload to export, every stage in view.</p>
        <Suspense fallback={null}>
          <SignInForm />
        </Suspense>
      </div>
    </main>
  );
}
