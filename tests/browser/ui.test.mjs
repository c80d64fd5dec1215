// End-to-end tests of the sales UI (/app/) in headless Debian Chromium, driven by playwright-core,
// against the local runtime (`node dev/runtime.mjs`) with seeded data.
//
//   node --test tests/browser/        (or `make test-browser`)
//
// Screenshots of every page go to tests/artifacts/ (gitignored); the dashboard and board ones are
// also copied to docs/screenshots/ for the README.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ROOT, axe, client, eventually, launchBrowser, mintToken, postFacebookWebhook, screenshot, seedDemo, startGraphStub, startRuntime, uniqueOrg } from "./harness.mjs";

const BUNDLE_LIMIT = 200 * 1024;
const FACEBOOK_PAGE = "1029384756";

let runtime;
let browser;
let page;
let base;
let graph;
let token;
let api;
let seeded;
const pageErrors = [];
const consoleErrors = [];

before(async () => {
  graph = await startGraphStub();
  runtime = await startRuntime({ META_GRAPH_BASE_URL: graph.metaBase });
  base = runtime.url;
  token = mintToken({ org: uniqueOrg("demo"), sub: "user-ana", role: "admin" });
  api = client(base, token);
  [seeded, browser] = await Promise.all([seedDemo(api), launchBrowser()]);
  page = await browser.context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await runtime?.stop();
  await graph?.stop();
});

// ------------------------------------------------------------------------------------------------
// Helpers

const rows = () => page.locator("table.leads-table tbody tr");
const rowNames = () => rows().locator("th a").allTextContents();
const card = (name) => page.locator(`li.lead-card[data-name="${name}"]`);
const stageId = (name) => seeded.stages.find((s) => s.name === name).id;
const column = (name) => page.locator(`ol.column__cards[data-stage-id="${stageId(name)}"]`);
const columnNames = (name) => column(name).locator("li.lead-card").evaluateAll((cards) => cards.map((c) => c.dataset.name));

async function settled(p = page) {
  await p.waitForFunction(() => !document.querySelector("main .loading, main [aria-busy='true'], .lead-card.is-saving"), null, { timeout: 15_000 });
}

async function shot(name, { readme = false, p = page } = {}) {
  await settled(p);
  await screenshot(p, name, { readme });
}

/**
 * A second tab of the same user, signed in through the URL fragment, whose live socket is
 * replaced by `onLiveSocket` (a Playwright WebSocketRoute handler) before the app opens it.
 */
async function tabWithLiveSocket(onLiveSocket, url) {
  const tab = await browser.context.newPage();
  tab.on("pageerror", (error) => pageErrors.push(error.message));
  await tab.routeWebSocket(/\/v1\/live$/, onLiveSocket);
  await tab.goto(`${url}#token=${token}`);
  return tab;
}

/** Waits until the leads table shows exactly `names` (in order when `ordered`). */
async function tableShows(names, { ordered = false } = {}) {
  const want = ordered ? names : [...names].sort();
  await eventually(
    async () => {
      const got = await rowNames();
      return JSON.stringify(ordered ? got : got.sort()) === JSON.stringify(want);
    },
    { what: `the table to show ${names.join(", ")} (it shows ${(await rowNames()).join(", ")})` },
  );
}

const moveResponse = (p = page) => p.waitForResponse((r) => /\/v1\/leads\/[^/]+\/move$/.test(new URL(r.url()).pathname) && r.request().method() === "POST");

// ------------------------------------------------------------------------------------------------

test("signs in with a pasted development token", { timeout: 60_000 }, async () => {
  await page.goto(`${base}/app/`);
  await page.getByLabel("Token", { exact: true }).fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("This is not a JWT").waitFor();

  await page.getByLabel("Token", { exact: true }).fill(token);
  await shot("signin");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Leads" }).waitFor();
  assert.match(new URL(page.url()).pathname, /^\/app\/leads$/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("leadheat.token")), token);
  await page.locator("#who", { hasText: "user-ana" }).waitFor();
});

test("filters and sort change the table and live in the URL", { timeout: 90_000 }, async () => {
  await page.goto(`${base}/app/leads`);
  await eventually(async () => (await rows().count()) === 12, { what: "12 leads" });

  await page.getByLabel("Heat level", { exact: true }).selectOption("HOT");
  await tableShows(["Hannah Hughes", "Priya Patel", "Lena Novak"]);
  assert.deepEqual([...new Set(await rows().evaluateAll((trs) => trs.map((tr) => tr.dataset.heat)))], ["HOT"]);
  assert.equal(new URL(page.url()).searchParams.get("heat_level"), "HOT");

  await page.getByLabel("Source", { exact: true }).selectOption("referral");
  await tableShows(["Hannah Hughes"]);

  // The URL alone restores the view.
  await page.reload();
  await tableShows(["Hannah Hughes"]);
  assert.equal(await page.getByLabel("Heat level", { exact: true }).inputValue(), "HOT");
  assert.equal(await page.getByLabel("Source", { exact: true }).inputValue(), "referral");

  await page.getByRole("button", { name: "Clear filters" }).click();
  await eventually(async () => (await rows().count()) === 12, { what: "all leads again" });
  assert.equal(new URL(page.url()).search, "");

  await page.getByLabel("Search", { exact: true }).fill("rossi");
  await tableShows(["Marco Rossi"]);
  assert.equal(new URL(page.url()).searchParams.get("q"), "rossi");
  await page.getByLabel("Search", { exact: true }).fill("");

  await page.getByLabel("Tag", { exact: true }).fill("vip");
  await tableShows(["Hannah Hughes", "Priya Patel"]);
  await page.getByLabel("Tag", { exact: true }).fill("");
  // The owner filter lists the org's members (user-ana signed in; her token carries no name).
  await page.getByLabel("Owner", { exact: true }).selectOption({ label: "user-ana" });
  await tableShows(["Hannah Hughes", "Priya Patel", "Lena Novak", "Aisha Khan"]);
  await page.getByLabel("Owner", { exact: true }).selectOption("");
  await page.getByLabel("Stage", { exact: true }).selectOption({ label: "Won" });
  await tableShows(["Lena Novak"]);
  await page.getByLabel("Stage", { exact: true }).selectOption("");

  // Sorting by the Lead column header: last name A-Z, then Z-A.
  await page.getByRole("button", { name: /^Lead/ }).click();
  await tableShows(["Diego Alvarez", "Tom Becker", "Colin Carter", "Cora Chen", "Hannah Hughes", "Aisha Khan", "Grace Lee", "Lena Novak", "Priya Patel", "Marco Rossi", "Wanda Walsh", "Walter Wong"], { ordered: true });
  assert.equal(new URL(page.url()).searchParams.get("sort"), "name");
  assert.equal(await page.locator("th[data-sort-key=name]").getAttribute("aria-sort"), "ascending");
  await page.getByRole("button", { name: /^Lead/ }).click();
  await eventually(async () => (await rowNames())[0] === "Walter Wong", { what: "Z-A order" });
  assert.equal(new URL(page.url()).searchParams.get("sort"), "-name");

  await page.getByRole("button", { name: "Clear filters" }).click();
  await eventually(async () => (await rowNames())[0] !== "Walter Wong" && (await rows().count()) === 12, { what: "the default sort" });
  await shot("leads");
});

test("infinite scroll loads the next page of leads", { timeout: 90_000 }, async () => {
  const bulkToken = mintToken({ org: uniqueOrg("bulk"), sub: "user-bulk" });
  const bulk = client(base, bulkToken);
  for (let batch = 0; batch < 6; batch++) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => bulk.post("/v1/leads", { first_name: "Bulk", last_name: `Lead ${String(batch * 10 + i).padStart(2, "0")}`, source: "other" })));
  }
  const other = await browser.context.newPage();
  try {
    // A token can also be handed over in the URL fragment (and is removed from it at once).
    await other.goto(`${base}/app/leads?sort=name#token=${bulkToken}`);
    const bulkRows = other.locator("table.leads-table tbody tr");
    await eventually(async () => (await bulkRows.count()) === 50, { what: "the first page of 50" });
    assert.equal(new URL(other.url()).hash, "");
    await other.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await eventually(async () => (await bulkRows.count()) === 60, { what: "the second page" });
    assert.equal(await other.locator("table.leads-table tbody tr th a").last().textContent(), "Bulk Lead 59");
  } finally {
    await other.close();
  }
});

test("a manual touchpoint raises the badge from WARM to HOT at once", { timeout: 60_000 }, async () => {
  const wanda = seeded.leads.Wanda;
  assert.equal(wanda.heat_level, "WARM");
  // Live refreshes are held back in this tab (its socket never reaches the server and the changes
  // probe says nothing changed), so whatever changes comes from the POST answer itself.
  const quiet = await tabWithLiveSocket(() => {}, `${base}/app/leads/${wanda.id}`);
  await quiet.route("**/v1/changes*", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: { ...(await response.json()), changed: false } });
  });
  try {
    const badge = quiet.locator("#lead-heat .heat");
    await eventually(async () => (await badge.textContent()).startsWith("WARM"), { what: "the WARM badge" });
    await quiet.getByText("Budget (EUR)").waitFor();

    const form = quiet.getByRole("form", { name: "Add a touchpoint" });
    await form.getByLabel("Type", { exact: true }).selectOption("price_quote");
    await form.getByLabel("Platform", { exact: true }).selectOption("email");
    await form.getByLabel("Note", { exact: true }).fill("Asked for a quote for 40 seats");
    const requests = [];
    const onRequest = (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    quiet.on("request", onRequest);
    const posted = quiet.waitForResponse((r) => r.url().endsWith(`/v1/leads/${wanda.id}/interactions`) && r.request().method() === "POST");
    await form.getByRole("button", { name: "Add touchpoint" }).click();
    assert.equal((await posted).status(), 201);
    await eventually(async () => (await badge.textContent()) === "HOT 16", { timeout: 3_000, what: "the HOT badge" });
    quiet.off("request", onRequest);
    assert.ok(!requests.includes(`GET /v1/leads/${wanda.id}`), `the badge changed without refetching the lead: ${requests.join(", ")}`);

    await quiet.locator(".timeline__item").first().getByText("Price quote", { exact: true }).waitFor();
    await quiet.locator(".timeline__item").first().getByText("Asked for a quote for 40 seats").waitFor();
    await quiet.getByRole("region", { name: "Why this heat" }).getByText("Score 16.").waitFor();
    await shot("lead", { p: quiet });
  } finally {
    await quiet.close();
  }
  const stored = await api.get(`/v1/leads/${wanda.id}`);
  assert.equal(stored.heat_level, "HOT");
});

test("a page fires all of its API requests at once (no waterfall)", { timeout: 60_000 }, async () => {
  const requests = [];
  const onRequest = (r) => {
    const route = new URL(r.url()).pathname;
    if (route.startsWith("/v1/") && route !== "/v1/changes" && !requests.some((x) => x.route === route)) requests.push({ route, request: r });
  };
  page.on("request", onRequest);
  await page.goto(`${base}/app/leads/${seeded.leads.Priya.id}`);
  await settled();
  page.off("request", onRequest);
  const id = seeded.leads.Priya.id;
  assert.deepEqual(
    requests.map((r) => r.route).sort(),
    [`/v1/custom-fields`, `/v1/leads/${id}`, `/v1/leads/${id}/heat`, `/v1/leads/${id}/timeline`, `/v1/members`, `/v1/pipeline/stages`].sort(),
  );
  const timings = await Promise.all(requests.map(async ({ request }) => (await request.response(), request.timing())));
  const lastStart = Math.max(...timings.map((t) => t.startTime));
  const firstEnd = Math.min(...timings.map((t) => t.startTime + t.responseEnd));
  assert.ok(lastStart <= firstEnd, `every request was sent before the first answer arrived (last sent ${lastStart}, first answered ${firstEnd})`);
});

test("drag-and-drop moves a card between and within columns, and survives a reload", { timeout: 90_000 }, async () => {
  await page.goto(`${base}/app/board`);
  await card("Colin Carter").waitFor();
  assert.deepEqual(await columnNames("Qualified"), ["Walter Wong", "Marco Rossi"]);

  // Between columns: Colin from New to the end of Qualified.
  const target = column("Qualified");
  const box = await target.boundingBox();
  let moved = moveResponse();
  await card("Colin Carter").dragTo(target, { targetPosition: { x: box.width / 2, y: box.height - 4 } });
  assert.equal((await moved).status(), 200);
  assert.deepEqual(await columnNames("Qualified"), ["Walter Wong", "Marco Rossi", "Colin Carter"]);
  assert.ok(!(await columnNames("New")).includes("Colin Carter"));

  // Within a column: Grace above Wanda in Contacted.
  assert.deepEqual(await columnNames("Contacted"), ["Wanda Walsh", "Diego Alvarez", "Grace Lee"]);
  moved = moveResponse();
  await card("Grace Lee").dragTo(card("Wanda Walsh"), { targetPosition: { x: 40, y: 4 } });
  assert.equal((await moved).status(), 200);
  assert.deepEqual(await columnNames("Contacted"), ["Grace Lee", "Wanda Walsh", "Diego Alvarez"]);

  await page.reload();
  await card("Colin Carter").waitFor();
  assert.deepEqual(await columnNames("Qualified"), ["Walter Wong", "Marco Rossi", "Colin Carter"]);
  assert.deepEqual(await columnNames("Contacted"), ["Grace Lee", "Wanda Walsh", "Diego Alvarez"]);
  const colin = await api.get(`/v1/leads/${seeded.leads.Colin.id}`);
  assert.equal(colin.stage_id, stageId("Qualified"));
});

test("keyboard moves: Alt+Arrow keys on a focused card", { timeout: 60_000 }, async () => {
  await page.goto(`${base}/app/board`);
  await card("Cora Chen").focus();
  let moved = moveResponse();
  await page.keyboard.press("Alt+ArrowRight");
  assert.equal((await moved).status(), 200);
  assert.equal((await columnNames("Contacted"))[0], "Cora Chen");
  moved = moveResponse();
  await page.keyboard.press("Alt+ArrowDown");
  assert.equal((await moved).status(), 200);
  assert.deepEqual(await columnNames("Contacted"), ["Grace Lee", "Cora Chen", "Wanda Walsh", "Diego Alvarez"]);
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.name), "Cora Chen", "focus stays on the moved card");

  await page.reload();
  await card("Cora Chen").waitFor();
  assert.deepEqual(await columnNames("Contacted"), ["Grace Lee", "Cora Chen", "Wanda Walsh", "Diego Alvarez"]);
});

test("a live refresh of the board updates the changed card and leaves every other card in place", { timeout: 60_000 }, async () => {
  await page.goto(`${base}/app/board`);
  const walter = card("Walter Wong");
  await walter.waitFor();
  await settled();
  const before = await walter.locator(".heat").textContent();
  // Tag every card's DOM node; a card re-created by the refresh loses the tag.
  const tagged = await page.evaluate(() => {
    const cards = [...document.querySelectorAll("li.lead-card")];
    cards.forEach((c) => (c.__sameNode = true));
    return cards.length;
  });
  // Not a social touchpoint, so the feed and engagement figures of later tests stay as seeded.
  await api.post(`/v1/leads/${seeded.leads.Walter.id}/interactions`, { type: "price_quote", platform: "email" });
  await eventually(async () => (await walter.locator(".heat").textContent()) !== before, { what: "Walter's badge to change live" });
  const kept = await page.evaluate(() =>
    [...document.querySelectorAll("li.lead-card")].filter((c) => !c.__sameNode).map((c) => c.dataset.name),
  );
  assert.deepEqual(kept, ["Walter Wong"], `only the changed card is new (${tagged} cards were tagged)`);
});

test("a refused move is rolled back with a visible message", { timeout: 60_000 }, async () => {
  await page.goto(`${base}/app/board`);
  await card("Aisha Khan").waitFor();
  await page.route("**/v1/leads/*/move", (route) =>
    route.fulfill({
      status: 409,
      contentType: "application/problem+json",
      body: JSON.stringify({ type: "https://leadheat.dev/problems/conflict", title: "Conflict", status: 409, detail: "the lead was moved concurrently; reload and retry" }),
    }),
  );
  try {
    const refused = moveResponse();
    const box = await column("Proposal").boundingBox();
    await card("Aisha Khan").dragTo(column("Proposal"), { targetPosition: { x: box.width / 2, y: box.height - 4 } });
    assert.equal((await refused).status(), 409);
    const alert = page.getByRole("alert").filter({ hasText: "Aisha Khan could not be moved to Proposal" });
    await alert.waitFor();
    assert.match(await alert.textContent(), /moved concurrently/);
    await eventually(async () => (await columnNames("New")).includes("Aisha Khan"), { what: "the card back in New" });
    assert.ok(!(await columnNames("Proposal")).includes("Aisha Khan"));
  } finally {
    await page.unroute("**/v1/leads/*/move");
  }
  await page.reload();
  await card("Aisha Khan").waitFor();
  assert.ok((await columnNames("New")).includes("Aisha Khan"));
  await shot("board", { readme: true });
});

const engagementChart = () => page.locator("svg.chart[data-days]");
const engagementValues = async (platform) => (await engagementChart().locator(`g[data-key="${platform}"]`).getAttribute("data-values")).split(" ").map(Number);

test("a webhook event appears live on an open dashboard", { timeout: 90_000 }, async (t) => {
  // What the page's own WebSocket receives from the org's live hub.
  const notices = [];
  const onSocket = (socket) => {
    if (!new URL(socket.url()).pathname.endsWith("/v1/live")) return;
    socket.on("framereceived", ({ payload }) => {
      if (typeof payload === "string" && payload.startsWith("{")) notices.push({ ...JSON.parse(payload), seenAt: Date.now() });
    });
  };
  page.on("websocket", onSocket);
  // The page asks for the figures once; the engagement chart draws the day-by-day series they carry.
  const requested = [];
  const record = (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.startsWith("/v1/") && pathname !== "/v1/changes") requested.push(pathname);
  };
  page.on("request", record);
  const dashboardResponse = page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/dashboard");
  await page.goto(`${base}/app/dashboard`);
  const data = await (await dashboardResponse).json();
  const live = page.locator("#live");
  await eventually(async () => (await live.getAttribute("data-transport")) === "socket" && (await live.textContent()).trim() === "Live", { what: "the live socket to open" });
  const facebook = page.locator('[data-platform-total="facebook"]');
  await facebook.waitFor();
  await settled();
  page.off("request", record);
  assert.deepEqual(requested, ["/v1/dashboard"], "one request, no feed sample");
  const byDay = data.social_engagement.by_day;
  assert.equal(byDay.length, 31, "every UTC day of the default 30-day window");
  assert.equal(await engagementChart().getAttribute("data-days"), "31");
  for (const platform of ["facebook", "instagram", "linkedin"]) {
    assert.deepEqual(await engagementValues(platform), byDay.map((d) => d[platform]), platform);
  }
  const facebookDays = await engagementValues("facebook");
  assert.deepEqual(facebookDays.filter((n) => n > 0), [1, 1, 1], "the seed's Facebook touchpoints fall on three days");
  const before = Number(await facebook.textContent());
  assert.equal(before, 3, "the seed has three Facebook touchpoints");
  const touchpoints = page.locator('[data-kpi="Touchpoints"] .kpi__value');
  const touchpointsBefore = Number((await touchpoints.textContent()).replace(/\D/g, ""));
  await page.evaluate(() => (window.__sameDocument = true));

  // Another channel entirely: Meta posts a signed `feed` event for a connected page.
  // Connecting proves the token administers the page: the stub Graph API lists it in me/accounts.
  graph.grantPages("test-page-access-token", [FACEBOOK_PAGE]);
  await api.put("/v1/integrations/facebook", { page_ids: [FACEBOOK_PAGE], access_token: "test-page-access-token" });
  const now = Math.floor(Date.now() / 1000);
  await postFacebookWebhook(base, {
    object: "page",
    entry: [
      {
        id: FACEBOOK_PAGE,
        time: now,
        changes: [
          {
            field: "feed",
            value: { item: "comment", verb: "add", post_id: `${FACEBOOK_PAGE}_77`, comment_id: `${FACEBOOK_PAGE}_77_${now}`, message: "Do you ship to Norway?", from: { id: "fb-user-ingrid", name: "Ingrid Berg" }, created_time: now },
          },
        ],
      },
    ],
  });
  const started = Date.now();
  // Within the 30 s safety-net poll of a page with a socket: the notice, not the poll, brings it.
  await eventually(async () => Number(await facebook.textContent()) === before + 1, { timeout: 20_000, what: "the Facebook total to go up on screen" });
  const onScreen = Date.now();
  page.off("websocket", onSocket);
  const social = notices.find((n) => n.type === "changed" && n.source === "social");
  assert.ok(social, `the page's socket received the sync worker's notice: ${JSON.stringify(notices)}`);
  t.diagnostic(`the webhook event was on screen ${((onScreen - started) / 1000).toFixed(1)} s after it was posted (notice after ${((social.seenAt - started) / 1000).toFixed(1)} s)`);
  assert.equal(Number((await touchpoints.textContent()).replace(/\D/g, "")), touchpointsBefore + 1);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
  // The comment happened now: today's point, the chart's last, went up by one.
  const facebookNow = await engagementValues("facebook");
  assert.equal(facebookNow.at(-1), facebookDays.at(-1) + 1);
  assert.deepEqual(facebookNow.slice(0, -1), facebookDays.slice(0, -1));
  await shot("dashboard", { readme: true });
});

test("without a WebSocket the dashboard still updates by polling", { timeout: 90_000 }, async (t) => {
  // This tab's socket is refused at once, as a proxy without WebSocket support would.
  const tab = await tabWithLiveSocket((socket) => socket.close({ code: 1011, reason: "no websockets here" }), `${base}/app/dashboard`);
  try {
    const live = tab.locator("#live");
    await eventually(async () => (await live.getAttribute("data-transport")) === "poll" && (await live.textContent()).trim() === "Live (polling)", { what: "the polling fallback" });
    const touchpoints = tab.locator('[data-kpi="Touchpoints"] .kpi__value');
    await touchpoints.waitFor();
    const count = async () => Number((await touchpoints.textContent()).replace(/\D/g, ""));
    const before = await count();
    await api.post(`/v1/leads/${seeded.leads.Priya.id}/interactions`, { type: "meeting", platform: "in_person", metadata: { note: "Polled in" } });
    const started = Date.now();
    await eventually(async () => (await count()) === before + 1, { timeout: 20_000, what: "the touchpoint count to go up by polling" });
    t.diagnostic(`polling showed the touchpoint after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await tab.close();
  }
});

test("the social feed filters by platform", { timeout: 60_000 }, async () => {
  await page.goto(`${base}/app/feed`);
  const items = page.locator("li.feed__item");
  await eventually(async () => (await items.count()) === 12, { what: "12 social touchpoints" });
  await page.getByRole("radio", { name: "Facebook" }).check();
  await eventually(async () => (await items.count()) === 4, { what: "the 4 Facebook touchpoints" });
  assert.deepEqual([...new Set(await items.evaluateAll((els) => els.map((e) => e.dataset.platform)))], ["facebook"]);
  assert.equal(new URL(page.url()).searchParams.get("platform"), "facebook");
  await page.getByText("Do you ship to Norway?").waitFor();
  await page.getByRole("radio", { name: "All" }).check();
  await eventually(async () => (await items.count()) === 12, { what: "all platforms again" });
  await shot("feed");
});

test("every page passes axe-core's WCAG 2 A and AA rules (no serious or critical violations)", { timeout: 120_000 }, async (t) => {
  const pages = {
    leads: "/app/leads",
    lead: `/app/leads/${seeded.leads.Priya.id}`,
    board: "/app/board",
    dashboard: "/app/dashboard",
    feed: "/app/feed",
  };
  const report = [];
  for (const [name, route] of Object.entries(pages)) {
    await page.goto(`${base}${route}`);
    await page.locator("main h1").waitFor();
    await settled();
    const result = await axe(page);
    report.push(`${name}: ${result.passes} rules passed, ${result.violations} violations (${result.serious.length} serious or critical)`);
    assert.deepEqual(result.serious, [], `${name} page`);
  }
  t.diagnostic(report.join(" | "));
});

test("the whole UI is well under 200 KB gzipped", (t) => {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else files.push(file);
    }
  };
  walk(path.join(ROOT, "ui"));
  let raw = 0;
  let gzipped = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    raw += bytes.length;
    gzipped += gzipSync(bytes, { level: 9 }).length;
  }
  const line = `UI bundle: ${files.length} files, ${(raw / 1024).toFixed(1)} KB raw, ${(gzipped / 1024).toFixed(1)} KB gzipped (limit 200 KB)`;
  t.diagnostic(line);
  assert.ok(gzipped < BUNDLE_LIMIT, line);
});

test("no uncaught errors and no Content-Security-Policy violations in the page", () => {
  assert.deepEqual(pageErrors, []);
  // The only console errors expected are the browser's own notes on the refused (409) move.
  assert.deepEqual(consoleErrors.filter((text) => !/status of 409/.test(text)), []);
});
