import Link from "next/link";

export default function NotFound() {
  return (
    <main className="mx-auto max-w-xl p-6">
      <h1 className="mb-2 text-2xl font-bold">Page not found</h1>
      <p className="mb-4 text-slate-700">There is nothing at this address.</p>
      <Link href="/documents" className="text-blue-700 underline">
        Back to your documents
      </Link>
    </main>
  );
}
