// Lead editing in the sales UI, in headless Debian Chromium: a new lead (with a field error
// first), an edit sent with If-Match, an If-Match conflict shown with their values and yours, a
// merge choosing fields side by side, the export, the erasure, and bulk actions on the list.
// Owners are the org's members, shown by name. Viewers get no edit controls. Every dialog state
// passes axe-core's WCAG 2.1 A/AA rules, and no Content-Security-Policy violation occurs.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { axe, client, eventually, launchBrowser, mintToken, screenshot, startRuntime, uniqueOrg } from "./harness.mjs";

let runtime;
let browser;
let base;
let org;
let api;
let page;
const leads = {};
const pageErrors = [];
const cspViolations = [];

/** A page that records uncaught errors and CSP violations (listened for before any script runs). */
async function newPage() {
  const p = await browser.context.newPage();
  p.on("pageerror", (error) => pageErrors.push(error.message));
  p.on("console", (message) => /Content Security Policy/i.test(message.text()) && cspViolations.push(message.text()));
  await p.exposeFunction("reportCspViolation", (text) => cspViolations.push(text));
  await p.addInitScript(() => document.addEventListener("securitypolicyviolation", (e) => window.reportCspViolation(`${e.violatedDirective} ${e.blockedURI}`)));
  return p;
}

before(async () => {
  [runtime, browser] = await Promise.all([startRuntime(), launchBrowser()]);
  base = runtime.url;
  org = uniqueOrg("editing");
  const token = mintToken({ org, sub: "user-ana", role: "admin", name: "Ana Lima", email: "ana@leadheat.example" });
  api = client(base, token);
  // Ben signs in once: from then on he is a member, and an owner to choose.
  await client(base, mintToken({ org, sub: "user-ben", role: "member", name: "Ben Ortiz", email: "ben@leadheat.example" })).get("/v1/leads");
  for (const [first, last, company] of [
    ["Nora", "North", "Northwind"],
    ["Omar", "Olsen", "Olsen AB"],
    ["Pia", "Park", "Parkway"],
  ]) {
    leads[first] = await api.post("/v1/leads", { first_name: first, last_name: last, email: `${first}@${company.replace(/\W/g, "")}.example`.toLowerCase(), company, source: "referral" });
  }
  page = await newPage();
  await page.goto(`${base}/app/leads#token=${token}`);
  await page.getByRole("heading", { level: 1, name: "Leads" }).waitFor();
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await runtime?.stop();
});

// ------------------------------------------------------------------------------------------------
// Helpers

/** Serious or critical WCAG 2.1 A/AA violations of the page as it is now (dialogs included). */
async function assertAccessible(what, p = page) {
  assert.deepEqual((await axe(p)).serious, [], what);
}

const dialog = (name) => page.getByRole("dialog", { name });
const apiAnswer = (method, pattern) => page.waitForResponse((r) => r.request().method() === method && pattern.test(new URL(r.url()).pathname));
const rows = () => page.locator("table.leads-table tbody tr");
const row = (name) => rows().filter({ has: page.locator("th a", { hasText: name }) });

async function openLead(lead) {
  await page.goto(`${base}/app/leads/${lead.id}`);
  await page.getByRole("group", { name: "Lead actions" }).waitFor();
}

async function status(route) {
  const response = await fetch(base + route, { headers: { Authorization: `Bearer ${mintToken({ org, sub: "user-ana", role: "admin" })}` } });
  return response.status;
}

// ------------------------------------------------------------------------------------------------

test("a new lead: a field error next to its field, then the lead with a member as owner", { timeout: 90_000 }, async () => {
  await page.goto(`${base}/app/leads`);
  await page.getByRole("button", { name: "New lead" }).click();
  const form = dialog("New lead");
  await form.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.name), "first_name", "the focus starts in the form");
  await assertAccessible("the new lead dialog");

  await form.getByLabel("First name").fill("Zoe");
  await form.getByLabel("Last name").fill("Zimmer");
  await form.getByLabel("Email").fill("zoe-at-zimmer");
  const refused = apiAnswer("POST", /^\/v1\/leads$/);
  await form.getByRole("button", { name: "Create lead" }).click();
  assert.equal((await refused).status(), 422);
  const email = form.getByLabel("Email");
  await eventually(async () => (await email.getAttribute("aria-invalid")) === "true", { what: "the email marked invalid" });
  const message = form.locator("#new-email-error");
  assert.match(await message.textContent(), /email/i);
  assert.equal(await email.getAttribute("aria-describedby"), "new-email-error");
  assert.equal(await page.evaluate(() => document.activeElement?.name), "email", "the focus moves to the invalid field");
  await assertAccessible("the new lead dialog with a field error");

  await email.fill("zoe@zimmer.example");
  await form.getByLabel("Owner").selectOption({ label: "Ben Ortiz (ben@leadheat.example)" });
  await form.getByLabel("Tags").fill("trade fair, q4");
  const created = apiAnswer("POST", /^\/v1\/leads$/);
  await form.getByRole("button", { name: "Create lead" }).click();
  const lead = await (await created).json();
  await page.getByRole("heading", { level: 1, name: "Zoe Zimmer" }).waitFor();
  assert.equal(new URL(page.url()).pathname, `/app/leads/${lead.id}`);
  await page.locator("dl.props dd", { hasText: "Ben Ortiz" }).waitFor();
  const stored = await api.get(`/v1/leads/${lead.id}`);
  assert.equal(stored.owner_id, "user-ben");
  assert.deepEqual(stored.tags, ["trade fair", "q4"]);
  leads.Zoe = stored;
});

test("an edit is sent with If-Match and only the changed fields", { timeout: 60_000 }, async () => {
  await openLead(leads.Zoe);
  await page.getByRole("button", { name: "Edit" }).click();
  const form = dialog("Edit Zoe Zimmer");
  await form.waitFor();
  await assertAccessible("the edit dialog");
  await form.getByLabel("Company").fill("Zimmer GmbH");
  const saved = apiAnswer("PATCH", /^\/v1\/leads\/[^/]+$/);
  await form.getByRole("button", { name: "Save changes" }).click();
  const response = await saved;
  assert.equal(response.status(), 200);
  assert.equal(response.request().headers()["if-match"], `"${leads.Zoe.version}"`);
  assert.deepEqual(JSON.parse(response.request().postData()), { company: "Zimmer GmbH" });
  await form.waitFor({ state: "detached" });
  await page.locator("dl.props dd", { hasText: "Zimmer GmbH" }).waitFor();
  leads.Zoe = await api.get(`/v1/leads/${leads.Zoe.id}`);
  assert.equal(leads.Zoe.company, "Zimmer GmbH");
});

test("an If-Match conflict shows their values next to yours, and yours can be saved over theirs", { timeout: 60_000 }, async () => {
  await openLead(leads.Zoe);
  await page.getByRole("button", { name: "Edit" }).click();
  const form = dialog("Edit Zoe Zimmer");
  await form.getByLabel("Job title").fill("CTO");
  // Someone else saves the lead between the form's load and its save.
  await api.patch(`/v1/leads/${leads.Zoe.id}`, { title: "CEO", phone: "+49 30 1234567" });
  const refused = apiAnswer("PATCH", /^\/v1\/leads\/[^/]+$/);
  await form.getByRole("button", { name: "Save changes" }).click();
  assert.equal((await refused).status(), 412);
  const conflict = form.getByRole("region", { name: "Someone else saved this lead while you were editing" });
  await conflict.waitFor();
  const title = conflict.locator('tr[data-field="title"] td');
  assert.deepEqual(await title.allTextContents(), ["CEO", "CTO"]);
  const phone = conflict.locator('tr[data-field="phone"] td');
  assert.deepEqual(await phone.allTextContents(), ["+49 30 1234567", "(not changed by you)"]);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "conflict-h");
  await assertAccessible("the edit conflict");

  const overwritten = apiAnswer("PATCH", /^\/v1\/leads\/[^/]+$/);
  await conflict.getByRole("button", { name: "Save mine over theirs" }).click();
  const response = await overwritten;
  assert.equal(response.status(), 200);
  assert.deepEqual(JSON.parse(response.request().postData()), { title: "CTO" });
  await form.waitFor({ state: "detached" });
  const stored = await api.get(`/v1/leads/${leads.Zoe.id}`);
  assert.equal(stored.title, "CTO", "yours saved");
  assert.equal(stored.phone, "+49 30 1234567", "their other change kept");
  leads.Zoe = stored;
});

test("a merge picks the other lead by search and keeps the chosen value of each field", { timeout: 90_000 }, async () => {
  const other = await api.post("/v1/leads", { first_name: "Zoe", last_name: "Z.", email: "zoe.z@elsewhere.example", company: "Elsewhere", source: "website" });
  await api.post(`/v1/leads/${other.id}/interactions`, { type: "call", platform: "phone", metadata: { note: "Called from the other record" } });
  await openLead(leads.Zoe);
  await page.getByRole("button", { name: "Merge…" }).click();
  const merge = dialog("Merge another lead into Zoe Zimmer");
  await merge.getByLabel("Find the other lead").fill("elsewhere");
  await merge.getByRole("button", { name: /Zoe Z\. · zoe\.z@elsewhere\.example/ }).click();
  const table = merge.locator("table.merge-table");
  await table.waitFor();
  assert.deepEqual(await table.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.field)), ["last_name", "email", "phone", "company", "title", "owner_id"]);
  await assertAccessible("the merge comparison");
  await screenshot(page, "lead-merge", { readme: true });
  // Their email and company, our name.
  await merge.getByRole("radio", { name: "Email: keep zoe.z@elsewhere.example (merged lead)" }).check();
  await merge.getByRole("radio", { name: "Company: keep Elsewhere (merged lead)" }).check();
  const merged = apiAnswer("POST", /\/merge$/);
  await merge.getByRole("button", { name: "Merge the leads" }).click();
  assert.equal((await merged).status(), 200);
  await merge.waitFor({ state: "detached" });
  await page.locator("dl.props dd", { hasText: "zoe.z@elsewhere.example" }).waitFor();

  const stored = await api.get(`/v1/leads/${leads.Zoe.id}`);
  assert.equal(stored.last_name, "Zimmer");
  assert.equal(stored.email, "zoe.z@elsewhere.example");
  assert.equal(stored.company, "Elsewhere");
  assert.equal(stored.title, "CTO", "a field only this lead had stays");
  assert.equal(stored.owner_id, "user-ben");
  assert.equal(await status(`/v1/leads/${other.id}`), 404, "the other lead is merged away");
  await page.getByText("Called from the other record").waitFor();
  leads.Zoe = stored;
  leads.merged = other;
});

test("the export downloads the lead's JSON", { timeout: 60_000 }, async () => {
  await openLead(leads.Zoe);
  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export JSON" }).click();
  const file = await download;
  assert.equal(file.suggestedFilename(), `lead-${leads.Zoe.id}.json`);
  const exported = JSON.parse(readFileSync(await file.path(), "utf8"));
  assert.equal(exported.lead.id, leads.Zoe.id);
  assert.equal(exported.lead.email, "zoe.z@elsewhere.example");
  assert.ok(exported.interactions.some((i) => i.metadata?.note === "Called from the other record"));
  assert.ok(JSON.stringify(exported.merged_leads).includes(leads.merged.id));
});

test("bulk actions: tag two leads, assign an owner, filter by that member", { timeout: 90_000 }, async () => {
  await page.goto(`${base}/app/leads`);
  await eventually(async () => (await rows().count()) === 4, { what: "4 leads" });
  const bar = page.getByRole("form", { name: "Bulk actions on the selected leads" });
  assert.equal(await bar.isVisible(), false, "no bar without a selection");
  await page.getByRole("checkbox", { name: "Select Nora North" }).check();
  await page.getByRole("checkbox", { name: "Select Omar Olsen" }).check();
  await bar.getByText("2 selected").waitFor();
  await assertAccessible("the leads list with the bulk bar");

  await bar.getByLabel("Action").selectOption("add_tag");
  await bar.getByLabel("Tag to add").fill("webinar");
  const tagged = apiAnswer("POST", /^\/v1\/leads\/bulk$/);
  await bar.getByRole("button", { name: "Apply to selected" }).click();
  const answer = await (await tagged).json();
  assert.deepEqual(answer.counts, { ok: 2, not_found: 0, error: 0 });
  await row("Nora North").locator(".tag", { hasText: "webinar" }).waitFor();
  await row("Omar Olsen").locator(".tag", { hasText: "webinar" }).waitFor();
  assert.equal(await bar.isVisible(), false, "the selection is cleared");
  assert.deepEqual((await api.get(`/v1/leads/${leads.Nora.id}`)).tags, ["webinar"]);
  assert.deepEqual((await api.get(`/v1/leads/${leads.Pia.id}`)).tags, []);

  await page.getByRole("checkbox", { name: "Select Pia Park" }).check();
  await bar.getByLabel("Action").selectOption("assign_owner");
  await bar.getByLabel("New owner").selectOption({ label: "Ana Lima (ana@leadheat.example)" });
  const assigned = apiAnswer("POST", /^\/v1\/leads\/bulk$/);
  await bar.getByRole("button", { name: "Apply to selected" }).click();
  assert.equal((await assigned).status(), 200);
  await row("Pia Park").locator("td", { hasText: "Ana Lima" }).waitFor();
  assert.equal((await api.get(`/v1/leads/${leads.Pia.id}`)).owner_id, "user-ana");

  // The owner filter is a member picker.
  await page.getByLabel("Owner", { exact: true }).selectOption({ label: "Ana Lima (ana@leadheat.example)" });
  await eventually(async () => JSON.stringify(await rows().locator("th a").allTextContents()) === JSON.stringify(["Pia Park"]), { what: "only Pia Park" });
  assert.equal(new URL(page.url()).searchParams.get("owner_id"), "user-ana");
});

test("an erasure says what goes and what stays, and needs the word typed", { timeout: 60_000 }, async () => {
  await openLead(leads.Omar);
  await page.getByRole("button", { name: "Delete…" }).click();
  const erase = dialog("Erase Omar Olsen?");
  await erase.waitFor();
  await erase.getByText("every touchpoint of its timeline, and its heat history;").waitFor();
  await erase.getByText(/What stays: a salted hash of its email, phone and social account ids/).waitFor();
  const button = erase.getByRole("button", { name: "Erase this lead" });
  assert.equal(await button.isDisabled(), true);
  await assertAccessible("the erase dialog");
  await erase.getByLabel("Type ERASE to confirm").fill("eras");
  assert.equal(await button.isDisabled(), true);
  // Escape closes it, nothing erased; the focus goes back to the button.
  await page.keyboard.press("Escape");
  await erase.waitFor({ state: "detached" });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Delete…");
  assert.equal(await status(`/v1/leads/${leads.Omar.id}`), 200);

  await page.getByRole("button", { name: "Delete…" }).click();
  await erase.getByLabel("Type ERASE to confirm").fill("erase");
  const deleted = apiAnswer("DELETE", /^\/v1\/leads\/[^/]+$/);
  await button.click();
  assert.equal((await deleted).status(), 204);
  await page.getByRole("heading", { level: 1, name: "Leads" }).waitFor();
  assert.equal(await status(`/v1/leads/${leads.Omar.id}`), 404);
  await eventually(async () => !(await rows().locator("th a").allTextContents()).includes("Omar Olsen"), { what: "Omar gone from the list" });
});

test("a viewer sees no edit controls, but may export", { timeout: 60_000 }, async () => {
  const viewer = await newPage();
  try {
    await viewer.goto(`${base}/app/leads#token=${mintToken({ org, sub: "user-vera", role: "viewer" })}`);
    await viewer.locator("table.leads-table tbody tr").first().waitFor();
    assert.equal(await viewer.getByRole("button", { name: "New lead" }).count(), 0);
    assert.equal(await viewer.getByRole("checkbox").count(), 0);
    await viewer.goto(`${base}/app/leads/${leads.Nora.id}`);
    await viewer.getByRole("button", { name: "Export JSON" }).waitFor();
    for (const name of ["Edit", "Merge…", "Delete…"]) assert.equal(await viewer.getByRole("button", { name }).count(), 0, name);
    await assertAccessible("the lead page of a viewer", viewer);
  } finally {
    await viewer.close();
  }
});

test("no uncaught errors and no Content-Security-Policy violations", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(cspViolations, []);
});
