import type { NextConfig } from "next";

// Static export: the API (make run) or nginx (compose) serves frontend/out. In `next dev` the
// rewrite below proxies the API so cookies stay same-origin.
const api = process.env.DOCFLOW_API_URL ?? "http://127.0.0.1:8080";
const dev = process.env.NODE_ENV === "development";

const config: NextConfig = {
  output: dev ? undefined : "export",
  trailingSlash: false,
  images: { unoptimized: true },
  poweredByHeader: false,
  reactStrictMode: true,
  ...(dev
    ? { rewrites: async () => [{ source: "/api/:path*", destination: `${api}/api/:path*` }] }
    : {}),
};

export default config;
