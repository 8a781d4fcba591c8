import { mkdirSync, readFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { expect, test, type Browser, type Page } from "@playwright/test";

// Set by tests/e2e/test_browser.py, which starts the real stack and writes the files.
const UPLOADER = process.env.E2E_UPLOADER ?? "";
const REVIEWER = process.env.E2E_REVIEWER ?? "";
const PASSWORD = process.env.E2E_PASSWORD ?? "";
const FILES = process.env.E2E_FILES ?? "";
// File names carry the run's tag: a reviewer sees every document in the stack, other tests' too.
const RUN = process.env.E2E_RUN ?? "";
const SCAN = `scanned-invoice-${RUN}.pdf`;
const REPORT = `scanned-report-${RUN}.pdf`;
const CONTRACT = `contract-${RUN}.pdf`;
const BROKEN = `broken-${RUN}.pdf`;
const HERE = fileURLToPath(new URL(".", import.meta.url));
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? resolve(HERE, "..", "..", "docs", "screenshots")
  : resolve(HERE, "..", "test-results", "screenshots");

test.describe.configure({ mode: "serial" });

test.beforeAll(() => {
  for (const [name, value] of Object.entries({ UPLOADER, REVIEWER, PASSWORD, FILES, RUN })) {
    if (!value) throw new Error(`E2E_${name} is not set: run through tests/e2e/test_browser.py`);
  }
  mkdirSync(SHOTS, { recursive: true });
});

async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, email: string) {
  await page.goto("/documents");
  await expect(page).toHaveURL(/\/signin/);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("whoami")).toContainText(email);
}

async function newSession(browser: Browser, email: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, email);
  return page;
}

/** Records every state each timeline step shows, from the first paint on. */
async function recordTimeline(page: Page) {
  await page.addInitScript(() => {
    const seen = new Set<string>();
    const details: string[] = [];
    (window as unknown as { __seen: Set<string>; __details: string[] }).__seen = seen;
    (window as unknown as { __details: string[] }).__details = details;
    const scan = () => {
      document.querySelectorAll<HTMLElement>("[data-step]").forEach((el) => {
        seen.add(`${el.dataset.step}:${el.dataset.state}`);
        const detail = el.querySelector("[data-testid$='-detail']")?.textContent;
        if (detail && details[details.length - 1] !== detail) details.push(detail);
      });
    };
    new MutationObserver(scan).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

function row(page: Page, filename: string) {
  return page.locator(`[data-testid="document-row"][data-filename="${filename}"]`);
}

/**
 * A TCP hop between the browser and the API, so a test can cut live connections the way a
 * network does (Chromium's offline mode leaves an open stream alone).
 */
async function startCutter(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", close);
      s.on("close", close);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => sockets.forEach((s) => s.destroy()),
    close: () =>
      new Promise<void>((done) => {
        sockets.forEach((s) => s.destroy());
        server.close(() => done());
      }),
  };
}

let scannedId = "";

test("uploader signs in, uploads several files and watches every stage live up to review", async ({ page }) => {
  await page.goto("/signin");
  await page.getByLabel("Email").fill(UPLOADER);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  // The envelope's message, not raw JSON.
  const alert = page.locator("form [role=alert]");
  await expect(alert).toContainText(/password/i);
  await expect(alert).not.toContainText("{");
  await shot(page, "01-sign-in-error");

  await recordTimeline(page);
  await signIn(page, UPLOADER);
  await expect(page.getByTestId("empty")).toContainText("No documents yet");
  await expect(page.getByTestId("live")).toBeVisible();
  await shot(page, "02-documents-empty");

  // The slow one first (a scan: OCR page by page), through the file picker.
  await page.getByLabel("Choose files to upload").setInputFiles(join(FILES, SCAN));

  // Two more dropped at once, the way a person drags them from a file manager.
  const drop = await page.evaluateHandle(
    (files: { name: string; type: string; bytes: number[] }[]) => {
      const transfer = new DataTransfer();
      for (const f of files) transfer.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
      return transfer;
    },
    [CONTRACT, BROKEN].map((name) => ({
      name,
      type: "application/pdf",
      bytes: [...readFileSync(join(FILES, name))],
    })),
  );
  await page.getByTestId("dropzone").dispatchEvent("drop", { dataTransfer: drop });
  await expect(page.getByTestId("upload-item")).toHaveCount(3);
  await expect(page.getByTestId("upload-item").filter({ hasText: "Uploaded" })).toHaveCount(3);
  await expect(row(page, SCAN)).toBeVisible();
  await expect(row(page, BROKEN)).toBeVisible();
  await shot(page, "03-documents-busy");

  // Follow the scan while it is being worked on.
  await page.getByTestId("upload-item").filter({ hasText: SCAN }).getByRole("link", { name: "Follow it" }).click();
  await expect(page).toHaveURL(/\/document\?id=/);
  scannedId = new URL(page.url()).searchParams.get("id") ?? "";
  await expect(page.getByTestId("step-extract")).toHaveAttribute("data-state", "running", { timeout: 60_000 });
  await expect(page.getByTestId("step-extract-detail")).toContainText(/page \d+ of 6/, { timeout: 60_000 });
  await shot(page, "04-document-processing");

  await expect(page.getByTestId("document")).toHaveAttribute("data-status", "review", { timeout: 120_000 });
  for (const step of ["validate", "extract", "analyze", "categorize"]) {
    await expect(page.getByTestId(`step-${step}`)).toHaveAttribute("data-state", "done");
    await expect(page.getByTestId(`step-${step}`)).toContainText(/Done in \d/);
  }
  await expect(page.getByTestId("step-review")).toHaveAttribute("data-state", "waiting");
  await expect(page.getByTestId("category")).toContainText("invoice");
  await expect(page.getByLabel("Extracted text")).toContainText(/invoice/i);
  await expect(page.getByTestId("audit")).toContainText("document.review");
  const seen = await page.evaluate(() => [...(window as unknown as { __seen: Set<string> }).__seen]);
  const details = await page.evaluate(() => (window as unknown as { __details: string[] }).__details);
  // Seen while it happened, not only in the final state.
  expect(seen).toContain("extract:running");
  expect(seen).toContain("extract:done");
  expect(details.some((d) => /page \d of 6/.test(d))).toBe(true);
  await shot(page, "05-document-review");

  await page.goto("/documents");
  await expect(row(page, BROKEN)).toHaveAttribute("data-status", "failed");
  await expect(row(page, BROKEN).getByTestId("row-message")).toContainText(/\w/);
  await expect(row(page, CONTRACT)).toHaveAttribute("data-status", "review", { timeout: 90_000 });
  await row(page, BROKEN).getByRole("link").click();
  await expect(page.getByTestId("document")).toHaveAttribute("data-status", "failed");
  await expect(page.locator('[data-testid^="step-"][data-state="failed"]')).toHaveCount(1);
  await shot(page, "06-document-failed");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/signin\?signed_out=1/);
  await page.goto("/documents");
  await expect(page).toHaveURL(/\/signin/);
});

test("reviewer approves with a correction, finds it in the CSV export, and rejects another with a reason", async ({ browser }) => {
  const page = await newSession(browser, REVIEWER);
  await page.getByRole("link", { name: "Review queue" }).click();
  await expect(row(page, SCAN)).toBeVisible();
  await expect(row(page, CONTRACT)).toBeVisible();
  await shot(page, "07-review-queue");

  // Reject needs a reason.
  const contract = row(page, CONTRACT);
  await contract.getByRole("button", { name: `Review ${CONTRACT}` }).click();
  await contract.getByRole("button", { name: "Reject…" }).click();
  await contract.getByRole("button", { name: "Confirm rejection" }).click();
  await expect(contract.getByRole("alert")).toContainText("Give a reason");
  await contract.getByLabel("Reason (required)").fill("Unsigned copy; upload the signed one.");
  await contract.getByRole("button", { name: "Confirm rejection" }).click();
  await expect(row(page, CONTRACT)).toHaveCount(0);

  await page.goto(`/document?id=${scannedId}`);
  await page.getByRole("button", { name: "Approve…" }).click();
  await page.getByLabel("Title").fill("Scanned invoice 2026-001");
  await page.getByRole("button", { name: "Confirm approval" }).click();
  await expect(page.getByTestId("document")).toHaveAttribute("data-status", "finalised");
  await expect(page.getByTestId("step-review")).toContainText(`Approved by ${REVIEWER}`);
  await expect(page.getByTestId("step-export")).toHaveAttribute("data-state", "done");

  await page.getByRole("link", { name: "Export" }).click();
  await page.getByLabel("CSV").check();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download CSV" }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/\.csv$/);
  const csv = readFileSync((await download.path()) ?? "", "utf8");
  expect(csv).toContain(SCAN);
  expect(csv).toContain("Scanned invoice 2026-001");
  expect(csv).not.toContain(CONTRACT);
  await shot(page, "09-export");

  // The uploader sees the outcome and the reason.
  const uploaderPage = await newSession(browser, UPLOADER);
  await row(uploaderPage, CONTRACT).getByRole("link").click();
  await expect(uploaderPage.getByTestId("step-review")).toContainText("Unsigned copy; upload the signed one.");
  await uploaderPage.context().close();
  await page.context().close();
});

test("a cut stream shows Reconnecting… and then the correct final state", async ({ browser, baseURL }) => {
  const cutter = await startCutter(baseURL ?? "");
  const context = await browser.newContext({ baseURL: cutter.url });
  const page = await context.newPage();
  await signIn(page, UPLOADER);
  await page.getByLabel("Choose files to upload").setInputFiles(join(FILES, REPORT));
  await page.getByTestId("upload-item").filter({ hasText: REPORT }).getByRole("link", { name: "Follow it" }).click();
  await expect(page).toHaveURL(/\/document\?id=/);
  await expect(page.getByTestId("document").getByTestId("live")).toBeVisible();
  const id = new URL(page.url()).searchParams.get("id") ?? "";
  const status = () =>
    page.evaluate(async (docId) => (await (await fetch(`/api/v1/documents/${docId}`)).json()).status as string, id);
  expect(await status()).not.toBe("review");

  // Mid-pipeline: every open connection dies, and the stream cannot come back for now.
  await page.route("**/api/v1/documents/*/stream", (route) => route.abort("connectionreset"));
  cutter.cut();
  await expect(page.getByTestId("reconnecting")).toBeVisible();
  await shot(page, "08-reconnecting");

  // The pipeline carries on without the browser.
  await expect.poll(status, { timeout: 120_000 }).toBe("review");
  await expect(page.getByTestId("reconnecting")).toBeVisible();

  await page.unroute("**/api/v1/documents/*/stream");
  await expect(page.getByTestId("reconnecting")).toBeHidden({ timeout: 30_000 });
  await expect(page.getByTestId("live")).toBeVisible();
  await expect(page.getByTestId("document")).toHaveAttribute("data-status", "review");
  for (const step of ["validate", "extract", "analyze", "categorize"]) {
    await expect(page.getByTestId(`step-${step}`)).toHaveAttribute("data-state", "done");
  }
  await expect(page.getByTestId("step-review")).toHaveAttribute("data-state", "waiting");

  // And the phone layout of the list, for the record.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/documents");
  await expect(row(page, REPORT)).toBeVisible();
  await shot(page, "10-documents-phone");
  await context.close();
  await cutter.close();
});
