// Harness of the browser tests: the local runtime (`node dev/runtime.mjs`) on a free port with a
// fresh database, development JWTs minted here (independently of the Rust code), a small API
// client to seed data, signed webhook deliveries, and headless Debian Chromium via playwright-core.

import { spawn } from "node:child_process";
import http from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// The development secrets of .dev.vars.example (the runtime's defaults unless overridden).
export const JWT_SECRET = process.env.AUTH_JWT_SECRET || "dev-only-jwt-secret-change-me";
export const META_APP_SECRET = process.env.META_APP_SECRET || "dev-only-meta-app-secret";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const READY_TIMEOUT_MS = 120_000;

/**
 * A stub of Meta's Graph API on a free loopback port, for the calls that prove page ownership when
 * a page is connected: `GET /me` and `GET /me/accounts` answer for the tokens given to
 * `grantPages(token, pageIds)`; any other token gets Graph's code 190.
 */
export async function startGraphStub() {
  const grants = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://stub");
    const token = (req.headers.authorization || "").replace(/^Bearer /, "") || url.searchParams.get("access_token");
    const pages = grants.get(token);
    const answer = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!pages) return answer(400, { error: { message: "Invalid OAuth access token", type: "OAuthException", code: 190 } });
    if (url.pathname.endsWith("/me")) return answer(200, { id: `user-of-${token}`, name: "Stub User" });
    if (url.pathname.endsWith("/me/accounts")) {
      return answer(200, { data: pages.map((id) => ({ id, name: `Page ${id}`, access_token: `page-token-${id}`, tasks: ["MANAGE"] })) });
    }
    answer(400, { error: { message: "Unsupported get request", type: "GraphMethodException", code: 100 } });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    metaBase: `http://127.0.0.1:${server.address().port}/graph/v25.0`,
    grantPages: (token, pageIds) => grants.set(token, pageIds),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Starts the local runtime with a fresh temporary database; resolves once it prints its ready line.
 * `env` overrides the runtime's variables (for example META_GRAPH_BASE_URL).
 */
export async function startRuntime(env = {}) {
  const persist = mkdtempSync(path.join(tmpdir(), "leadheat-ui-"));
  const child = spawn(process.execPath, [path.join(ROOT, "dev/runtime.mjs"), "--port", "0", "--persist", persist], {
    cwd: ROOT,
    // Its own process group, so stopping it also stops the workerd processes it started.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    // The API's rate limits are raised far above what a UI test sends (tests may still override them).
    env: { API_RATE_LIMIT_PER_USER: "1000000", API_RATE_LIMIT_PER_ORG: "1000000", ...process.env, ...env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true" },
  });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the runtime printed no ready line in ${READY_TIMEOUT_MS / 1000} s:\n${log}`)), READY_TIMEOUT_MS);
    const onData = (chunk) => {
      log += chunk;
      const match = log.match(/\[leadheat\] ready on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the runtime exited (code ${code}) before it was ready:\n${log}`));
    });
  });
  // Keep draining its output so a chatty worker can never block on a full pipe.
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 10_000));
      if ((await Promise.race([exited, timeout])) === "timeout") {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }
    }
    // workerd children that outlived their parent share its process group.
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    rmSync(persist, { recursive: true, force: true });
  }
  return { url, stop, log: () => log };
}

const b64url = (value) => Buffer.from(value).toString("base64url");

/**
 * An HS256 JWT with sub, org, role and exp (one hour), and the optional profile claims `name` and
 * `email`, signed with the development secret.
 */
export function mintToken({ org, sub = "user-admin", role = "admin", ttl = 3600, name, email }) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ sub, org, role, exp: Math.floor(Date.now() / 1000) + ttl, name, email }));
  const signature = createHmac("sha256", JWT_SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

export const uniqueOrg = (label) => `org-ui-${label}-${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;

/** A tiny API client for seeding: throws with the problem body on any non-2xx answer. */
export function client(base, token) {
  async function call(method, route, body) {
    const response = await fetch(base + route, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  }
  return {
    get: (route) => call("GET", route),
    post: (route, body) => call("POST", route, body),
    put: (route, body) => call("PUT", route, body),
    patch: (route, body) => call("PATCH", route, body),
  };
}

/** Posts a Facebook Page webhook delivery signed with X-Hub-Signature-256, as Meta does. */
export async function postFacebookWebhook(base, payload) {
  const body = JSON.stringify(payload);
  const signature = `sha256=${createHmac("sha256", META_APP_SECRET).update(body).digest("hex")}`;
  const response = await fetch(`${base}/webhooks/facebook`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Hub-Signature-256": signature },
    body,
  });
  if (!response.ok) throw new Error(`POST /webhooks/facebook answered ${response.status}: ${await response.text()}`);
}

/** Headless Debian Chromium with a fresh profile; `close()` also removes the profile. */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), "leadheat-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1440, height: 900 },
    locale: "en-GB",
    timezoneId: "UTC",
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value (or throws the last error after `timeout` ms). */
export async function eventually(check, { timeout = 15_000, interval = 200, what = "a condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(interval);
  }
}

const DAY = 86_400_000;
const ago = (days, hours = 0) => new Date(Date.now() - days * DAY - hours * 3_600_000).toISOString();

/**
 * A realistic demo org: twelve leads over every source, stage and heat level, with manual and
 * social touchpoints spread over the last two weeks. Returns {leads: {firstName: lead}, stages}.
 * Default weights: social_follow 1, social_like 1, website_visit 2, info_request 5,
 * price_quote 8, site_visit 10; WARM from 6, HOT from 16.
 */
export async function seedDemo(api) {
  const stages = (await api.get("/v1/pipeline/stages")).items;
  const stage = (name) => stages.find((s) => s.name === name).id;
  const people = [
    ["Hannah", "Hughes", "Northwind Traders", "Head of Operations", "referral", ["vip"], "Proposal", "user-ana", [["site_visit", "in_person", 9], ["price_quote", "email", 3]]],
    ["Wanda", "Walsh", "Blue Harbor", "CFO", "website", [], "Contacted", "user-ben", [["price_quote", "email", 2]]],
    ["Walter", "Wong", "Fabrikam", "CTO", "facebook", ["webinar"], "Qualified", "user-ben", [["info_request", "website", 6], ["social_like", "facebook", 4]]],
    ["Colin", "Carter", "Contoso", "Analyst", "linkedin", [], "New", "user-ben", [["social_follow", "linkedin", 8]]],
    ["Cora", "Chen", "Litware", "Founder", "direct", [], "New", null, []],
    ["Priya", "Patel", "Tailspin Toys", "VP Sales", "instagram", ["vip"], "Negotiation", "user-ana", [["site_visit", "in_person", 5], ["info_request", "email", 7], ["social_comment", "instagram", 1], ["social_like", "instagram", 2]]],
    ["Marco", "Rossi", "Adventure Works", "Buyer", "website", [], "Qualified", "user-ben", [["website_visit", "website", 12], ["website_visit", "website", 6], ["website_visit", "website", 1]]],
    ["Lena", "Novak", "Wide World Importers", "Procurement Lead", "linkedin", ["event"], "Won", "user-ana", [["price_quote", "email", 13], ["site_visit", "in_person", 11], ["social_share", "linkedin", 10]]],
    ["Tom", "Becker", "Proseware", "IT Manager", "referral", [], "Lost", null, [["website_visit", "website", 13]]],
    ["Aisha", "Khan", "Woodgrove Bank", "Director", "facebook", [], "New", "user-ana", [["social_like", "facebook", 3], ["social_share", "facebook", 2], ["info_request", "website", 1]]],
    ["Diego", "Alvarez", "Coho Winery", "Owner", "instagram", [], "Contacted", null, [["story_view", "instagram", 4], ["social_like", "instagram", 0]]],
    ["Grace", "Lee", "Margie's Travel", "Marketing Manager", "other", ["event"], "Contacted", "user-ben", [["social_mention", "linkedin", 5], ["direct_message", "instagram", 2]]],
  ];
  await api.post("/v1/custom-fields", { key: "industry", label: "Industry", type: "select", options: ["Retail", "Finance", "Manufacturing", "Hospitality"] });
  await api.post("/v1/custom-fields", { key: "budget", label: "Budget (EUR)", type: "number" });
  const extras = {
    Hannah: { custom_fields: { industry: "Retail", budget: 48000 }, social_profiles: [{ platform: "linkedin", platform_user_id: "li-hannah", handle: "hannahhughes", url: "https://www.linkedin.com/in/hannahhughes" }] },
    Priya: { custom_fields: { industry: "Retail", budget: 120000 }, social_profiles: [{ platform: "instagram", platform_user_id: "ig-priya", handle: "priya.sells" }] },
    Wanda: { custom_fields: { industry: "Finance", budget: 25000 } },
    Lena: { custom_fields: { industry: "Manufacturing" } },
  };
  const leads = {};
  for (const [first, last, company, title, source, tags, stageName, owner, touches] of people) {
    const lead = await api.post("/v1/leads", {
      ...extras[first],
      first_name: first,
      last_name: last,
      email: `${first}.${last}@${company.toLowerCase().replace(/[^a-z]+/g, "")}.example`.toLowerCase(),
      company,
      title,
      source,
      tags,
      owner_id: owner,
      stage_id: stage(stageName),
    });
    let latest = lead;
    for (const [type, platform, days] of touches) {
      latest = (await api.post(`/v1/leads/${lead.id}/interactions`, { type, platform, occurred_at: ago(days, 3) })).lead;
    }
    leads[first] = latest;
  }
  return { leads, stages };
}

const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/**
 * axe-core's WCAG 2.1 A and AA rules on the page as it is now (open dialogs included):
 * `{ passes, violations, serious }`, where `serious` has one line per serious or critical
 * violation (empty when there is none). axe is evaluated through the DevTools protocol, which the
 * page's Content-Security-Policy does not govern.
 */
export async function axe(page) {
  await page.evaluate(readFileSync(path.join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8"));
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), AXE_TAGS);
  const serious = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
  return { passes: result.passes.length, violations: result.violations.length, serious };
}

export const ARTIFACTS = path.join(ROOT, "tests/artifacts");
export const README_SCREENSHOTS = path.join(ROOT, "docs/screenshots");

/**
 * A full-page screenshot in tests/artifacts/ (gitignored), also copied to docs/screenshots/ for
 * the README when `readme` is set.
 */
export async function screenshot(page, name, { readme = false } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (readme) {
    mkdirSync(README_SCREENSHOTS, { recursive: true });
    copyFileSync(file, path.join(README_SCREENSHOTS, `${name}.png`));
  }
}
