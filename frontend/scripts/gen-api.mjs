// Regenerates lib/api/schema.d.ts from the API's OpenAPI schema.
// OPENAPI_URL (e.g. http://127.0.0.1:8080/api/v1/openapi.json) reads a running API; otherwise the
// schema comes straight from the Python app (needs the project's virtualenv).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const out = resolve(here, "..", "lib", "api", "schema.d.ts");

async function schema() {
  const url = process.env.OPENAPI_URL;
  if (url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return await response.text();
  }
  const venv = join(root, ".venv", "bin", "python");
  const python = process.env.PYTHON ?? (existsSync(venv) ? venv : "python3");
  return execFileSync(
    python,
    ["-c", "import json; from docflow.app import create_app; print(json.dumps(create_app().openapi()))"],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
}

const file = join(mkdtempSync(join(tmpdir(), "docflow-openapi-")), "openapi.json");
writeFileSync(file, await schema());
execFileSync(join(here, "..", "node_modules", ".bin", "openapi-typescript"), [file, "-o", out], {
  stdio: "inherit",
});
