// Settings › Integrations in headless Debian Chromium: an admin connects Facebook through the
// platform's login (a stub here: its "dialog" sends the browser straight back to the API's
// callback with a code, its Graph API exchanges the code and lists the pages) and picks a page.
// Members get no Integrations link and no controls. docs/connect.md.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { axe, client, eventually, launchBrowser, mintToken, screenshot, startRuntime, uniqueOrg } from "./harness.mjs";

const APP_ID = "ui-test-app-id";
const USER_TOKEN = "ui-user-token-long-lived";
const PAGES = [
  { id: "7310001", name: "Shop Page" },
  { id: "7310002", name: "Blog Page" },
];

let runtime;
let browser;
let stub;
const pageErrors = [];
const consoleErrors = [];

/**
 * Meta's side of the login: `GET /dialog/oauth` redirects back to `redirect_uri` with a code and
 * the state; Graph's `oauth/access_token` exchanges the code (then the short-lived token for the
 * long-lived one); `me/accounts` lists the pages for the long-lived token.
 */
async function startMetaStub() {
  const seen = { dialog: [], exchanges: [] };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://stub");
    const answer = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/dialog/oauth") {
      seen.dialog.push(url);
      const back = new URL(url.searchParams.get("redirect_uri"));
      back.searchParams.set("code", "ui-code-1");
      back.searchParams.set("state", url.searchParams.get("state"));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (url.pathname.endsWith("/oauth/access_token")) {
      seen.exchanges.push(url);
      if (url.searchParams.get("client_id") !== APP_ID) return answer(400, { error: { message: "bad app", type: "OAuthException", code: 101 } });
      if (url.searchParams.get("code") === "ui-code-1") return answer(200, { access_token: "ui-short-token", token_type: "bearer", expires_in: 5400 });
      if (url.searchParams.get("fb_exchange_token") === "ui-short-token") return answer(200, { access_token: USER_TOKEN, token_type: "bearer", expires_in: 5183944 });
      return answer(400, { error: { message: "Invalid verification code format.", type: "OAuthException", code: 100 } });
    }
    const token = (req.headers.authorization || "").replace(/^Bearer /, "");
    if (url.pathname.endsWith("/me/accounts") && token === USER_TOKEN) {
      return answer(200, { data: PAGES.map((p) => ({ ...p, access_token: `page-token-${p.id}`, tasks: ["MANAGE"] })) });
    }
    answer(400, { error: { message: "Invalid OAuth access token", type: "OAuthException", code: 190 } });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, seen, stop: () => new Promise((resolve) => server.close(resolve)) };
}

before(async () => {
  stub = await startMetaStub();
  [runtime, browser] = await Promise.all([
    startRuntime({ META_APP_ID: APP_ID, META_OAUTH_DIALOG_URL: `${stub.base}/dialog/oauth`, META_GRAPH_BASE_URL: `${stub.base}/graph/v25.0` }),
    launchBrowser(),
  ]);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await runtime?.stop();
  await stub?.stop();
});

async function openIntegrations(token) {
  const page = await browser.context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
  await page.goto(`${runtime.url}/app/settings/integrations#token=${token}`);
  await page.locator("main h1").waitFor();
  return page;
}

async function seriousAxeViolations(page) {
  return (await axe(page)).serious;
}

test("an admin connects Facebook through the login and the page picker", { timeout: 120_000 }, async () => {
  const org = uniqueOrg("connect");
  const token = mintToken({ org, sub: "user-connect", role: "admin" });
  const page = await openIntegrations(token);
  assert.equal(await page.locator("main h1").textContent(), "Integrations");
  assert.ok(await page.getByRole("link", { name: "Integrations" }).isVisible(), "admins see the nav link");
  const facebook = page.locator('section[data-integration="facebook"]');
  await facebook.waitFor();
  assert.equal(await facebook.getAttribute("data-status"), "not_connected");
  assert.deepEqual(await seriousAxeViolations(page), [], "the integrations page");

  // The button goes to the platform's dialog, which comes back through the API's callback.
  await facebook.getByRole("button", { name: "Connect Facebook" }).click();
  await page.waitForURL(/\/app\/settings\/integrations\?platform=facebook&pending=/);
  assert.equal(stub.seen.dialog.length, 1);
  assert.equal(stub.seen.dialog[0].searchParams.get("client_id"), APP_ID);
  assert.equal(stub.seen.dialog[0].searchParams.get("redirect_uri"), `${runtime.url}/v1/integrations/facebook/callback`);
  assert.ok(!page.url().includes("code="), "the code does not stay in the address bar");

  const picker = page.getByRole("form", { name: "Choose the Facebook accounts to connect" });
  await picker.waitFor();
  const options = picker.getByRole("checkbox");
  assert.equal(await options.count(), PAGES.length);
  assert.deepEqual(await seriousAxeViolations(page), [], "the page picker");
  await screenshot(page, "connect-picker", { readme: true });
  await picker.getByRole("checkbox", { name: `Shop Page (${PAGES[0].id})` }).check();
  const picked = page.waitForResponse((r) => /\/v1\/integrations\/facebook\/pending\//.test(new URL(r.url()).pathname) && r.request().method() === "POST");
  await picker.getByRole("button", { name: "Connect selected" }).click();
  const response = await picked;
  assert.equal(response.status(), 200);
  assert.ok(!(await response.text()).includes("token-"), "no token comes back");

  // Back on the plain settings page, Facebook shows connected with the picked page only.
  await page.waitForURL((url) => url.pathname === "/app/settings/integrations" && url.search === "");
  await eventually(async () => (await facebook.getAttribute("data-status")) === "connected", { what: "Facebook to show connected" });
  const text = await facebook.textContent();
  assert.ok(text.includes(PAGES[0].id) && !text.includes(PAGES[1].id), text);
  assert.ok(await facebook.getByRole("button", { name: "Disconnect Facebook" }).isVisible());

  const status = (await client(runtime.url, token).get("/v1/integrations")).items.find((i) => i.platform === "facebook");
  assert.equal(status.connected, true);
  assert.deepEqual(status.accounts.page_ids, [PAGES[0].id]);
  await page.close();
});

test("a member gets no Integrations link and no controls", { timeout: 60_000 }, async () => {
  const token = mintToken({ org: uniqueOrg("connect-member"), sub: "user-member", role: "member" });
  const page = await openIntegrations(token);
  assert.equal(await page.getByRole("link", { name: "Integrations" }).count(), 0);
  assert.match(await page.locator("main").textContent(), /Only admins manage integrations/);
  assert.equal(await page.getByRole("button", { name: /Connect/ }).count(), 0);
  await page.close();
});

test("no uncaught errors and no Content-Security-Policy violations", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
});
