"use client";

import { useEffect } from "react";

export default function Home() {
  useEffect(() => {
    window.location.replace("/documents");
  }, []);
  return (
    <main className="p-6">
      <a href="/documents" className="text-blue-700 underline">
        Go to your documents
      </a>
    </main>
  );
}
