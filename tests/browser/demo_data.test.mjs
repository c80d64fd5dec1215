// A newcomer's first minute, in headless Debian Chromium: an empty workspace's dashboard offers
// the demo workspace to an admin, one click loads it through the API, and the dashboard then shows
// HOT leads, every source and social engagement; the leads page lists the demo leads. Members are
// told how leads arrive but offered no button.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { axe, eventually, launchBrowser, mintToken, screenshot, startRuntime, uniqueOrg } from "./harness.mjs";

let runtime;
let browser;
const pageErrors = [];
const consoleErrors = [];

before(async () => {
  // Set explicitly: an older local .dev.vars may predate the variable.
  [runtime, browser] = await Promise.all([startRuntime({ DEMO_DATA: "on" }), launchBrowser()]);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await runtime?.stop();
});

async function openDashboard(token) {
  const page = await browser.context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
  await page.goto(`${runtime.url}/app/dashboard#token=${token}`);
  await page.locator("main h1").waitFor();
  return page;
}

const kpiValue = (page, name) => page.locator(`.kpi[data-kpi="${name}"] .kpi__value`).textContent();


test("an admin loads the demo from the empty dashboard and sees HOT leads", { timeout: 120_000 }, async () => {
  const token = mintToken({ org: uniqueOrg("newcomer"), sub: "user-newcomer", role: "admin" });
  const page = await openDashboard(token);
  const empty = page.locator("section.empty-workspace");
  await empty.waitFor();
  assert.equal(await empty.locator("h2").textContent(), "No leads yet");
  const button = page.getByRole("button", { name: "Load demo data" });
  await button.waitFor();
  assert.equal(await kpiValue(page, "HOT leads"), "0");
  assert.deepEqual((await axe(page)).serious, [], "the empty dashboard");
  await screenshot(page, "demo-offer", { readme: true });

  const loaded = page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/demo-data" && r.request().method() === "POST");
  await button.click();
  const response = await loaded;
  assert.equal(response.status(), 201);
  const figures = await response.json();
  assert.ok(figures.hot >= 3, JSON.stringify(figures));

  // The dashboard reloads with the demo's figures; the offer is gone.
  await eventually(async () => (await kpiValue(page, "HOT leads")) === String(figures.hot), { what: `the HOT leads KPI to show ${figures.hot}` });
  assert.equal(await kpiValue(page, "Leads"), String(figures.leads));
  await eventually(async () => (await page.locator("section.empty-workspace").count()) === 0, { what: "the empty-workspace card to go" });
  for (const platform of ["facebook", "instagram", "linkedin"]) {
    const total = Number((await page.locator(`[data-platform-total="${platform}"]`).textContent()).replace(/\D/g, ""));
    assert.ok(total > 0, `${platform} engagement on the dashboard`);
  }
  assert.ok((await page.locator("ol.trending li").count()) > 0, "trending leads are listed");

  await page.goto(`${runtime.url}/app/leads?heat_level=HOT`);
  await eventually(async () => (await page.locator("table.leads-table tbody tr").count()) === figures.hot, { what: `${figures.hot} HOT rows in the leads table` });
  await page.close();
});

test("a member of an empty workspace is told how leads arrive, without the demo button", { timeout: 60_000 }, async () => {
  const token = mintToken({ org: uniqueOrg("member"), sub: "user-member", role: "member" });
  const page = await openDashboard(token);
  await page.locator("section.empty-workspace").waitFor();
  assert.equal(await page.getByRole("button", { name: "Load demo data" }).count(), 0);
  assert.match(await page.locator("section.empty-workspace").textContent(), /Leads arrive from connected Facebook/);
  await page.close();
});

test("no uncaught errors and no Content-Security-Policy violations", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
});
