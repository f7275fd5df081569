// Opens the API reference page in Debian's headless Chromium and checks what a
// reader sees: every operation of openapi.yaml is rendered, and "Try it out" →
// "Execute" on GET /api/v1/health shows a 200. Fails on any request to another
// origin (the page must work offline, no CDN), any Content-Security-Policy
// violation and any script error. Saves screenshots.
//
//   node tests/browser/docs-page.mjs BASE_URL OPERATIONS_JSON SCREENSHOT_DIR
//
// OPERATIONS_JSON is a JSON array of [METHOD, path] pairs (from openapi.yaml).
// Run by tests/api/tests/browser.rs, which starts the app; prints one JSON line.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, operationsJson, shots] = process.argv.slice(2);
if (!base || !operationsJson || !shots) {
  console.error("usage: docs-page.mjs BASE_URL OPERATIONS_JSON SCREENSHOT_DIR");
  process.exit(2);
}
const expected = JSON.parse(operationsJson);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(shots, { recursive: true });

const problems = [];
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root in CI containers cannot use Chromium's user-namespace sandbox.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const origin = new URL(base).origin;
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol !== "data:" && url.origin !== origin) {
      problems.push(`request to another origin: ${request.url()}`);
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });

  const response = await page.goto(`${base}/api/v1/docs`, { waitUntil: "networkidle" });
  if (response.status() !== 200) {
    problems.push(`GET /api/v1/docs answered ${response.status()}`);
  }
  await page.waitForSelector(".opblock", { timeout: 30000 });

  // Every operation of the document has its block (method + path).
  const rendered = await page.$$eval(".opblock", (blocks) =>
    blocks.map((block) => [
      (block.querySelector(".opblock-summary-method")?.textContent || "").trim().toUpperCase(),
      block.querySelector(".opblock-summary-path")?.getAttribute("data-path") || "",
    ]),
  );
  const key = ([method, path]) => `${method} ${path}`;
  const seen = new Set(rendered.map(key));
  const missing = expected.filter((op) => !seen.has(key(op)));
  if (missing.length > 0) {
    problems.push(`operations not rendered: ${missing.map(key).join(", ")}`);
  }
  const unexpected = rendered.filter((op) => !expected.some((e) => key(e) === key(op)));
  if (unexpected.length > 0) {
    problems.push(`rendered but not in openapi.yaml: ${unexpected.map(key).join(", ")}`);
  }
  await page.screenshot({ path: join(shots, "docs-page.png"), fullPage: false });

  // Try GET /api/v1/health from the page.
  const health = page
    .locator(".opblock.opblock-get")
    .filter({ has: page.locator('.opblock-summary-path[data-path="/api/v1/health"]') });
  await health.locator(".opblock-summary").first().click();
  await health.locator("button.try-out__btn").click();
  await health.locator("button.execute").click();
  const status = health.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 30000 });
  const shown = (await status.textContent()).trim();
  if (!shown.startsWith("200")) {
    problems.push(`"Try it out" on GET /api/v1/health showed ${JSON.stringify(shown)}, not 200`);
  }
  await health.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "docs-try-health.png"), fullPage: false });

  const violations = await page.evaluate(() => window.__cspViolations);
  for (const v of violations) problems.push(`Content-Security-Policy violation: ${v}`);

  console.log(
    JSON.stringify({
      operations: rendered.length,
      expected: expected.length,
      health_status: shown,
      problems,
    }),
  );
} finally {
  await browser.close();
}
process.exit(problems.length === 0 ? 0 : 1);
