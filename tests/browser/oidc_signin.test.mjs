// Sign-in through an identity provider, the whole redirect dance, in headless Debian Chromium: the
// sign-in page offers the company account, the browser goes to a stub OpenID Connect provider
// (discovery document, authorization page, token endpoint, JWKS; RS256 tokens with Auth0-style
// namespaced claims, from a key generated here), comes back with a code, and the app exchanges it
// with its PKCE verifier and shows the org and role the API mapped. The provider's refresh token
// renews the access token silently before it expires. The local runtime's development "sign in
// as" page needs no terminal either.

import assert from "node:assert/strict";
import { createHash, createSign, generateKeyPairSync, randomUUID } from "node:crypto";
import http from "node:http";
import { after, before, test } from "node:test";
import { axe, eventually, launchBrowser, screenshot, startRuntime, uniqueOrg } from "./harness.mjs";

const CLIENT_ID = "leadheat-ui";
const AUDIENCE = "https://api.leadheat.test";
const ORG_CLAIM = "https://leadheat.test/org";
const ROLES_CLAIM = "https://leadheat.test/roles";
// The API's JWTs live two minutes here; the app renews them a minute before they expire.
const ACCESS_TTL_SECONDS = 75;

const b64url = (value) => Buffer.from(value).toString("base64url");

/**
 * A stub OpenID Connect provider: discovery, an authorization page with a "Continue" button,
 * the token endpoint (authorization_code with S256 PKCE, refresh_token) and the JWKS. It records
 * every authorization request and token request.
 */
async function startProvider() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = `stub-${randomUUID().slice(0, 8)}`;
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" };
  const codes = new Map();
  const refreshTokens = new Map();
  const seen = { authorize: [], token: [] };
  let issuer = "";
  let user = null;

  const sign = (payload) => {
    const input = `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid }))}.${b64url(JSON.stringify(payload))}`;
    return `${input}.${createSign("RSA-SHA256").update(input).sign(privateKey).toString("base64url")}`;
  };
  const tokensFor = (grant) => {
    const now = Math.floor(Date.now() / 1000);
    const refresh = randomUUID();
    refreshTokens.set(refresh, grant);
    return {
      access_token: sign({ iss: issuer, aud: [AUDIENCE, `${issuer}userinfo`], sub: grant.user.sub, iat: now, exp: now + ACCESS_TTL_SECONDS, scope: grant.scope, [ORG_CLAIM]: grant.user.org, [ROLES_CLAIM]: grant.user.roles }),
      id_token: sign({ iss: issuer, aud: CLIENT_ID, sub: grant.user.sub, nonce: grant.nonce, iat: now, exp: now + 300, name: grant.user.name }),
      refresh_token: refresh,
      token_type: "Bearer",
      expires_in: ACCESS_TTL_SECONDS,
    };
  };
  const json = (res, status, body) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };
  const readForm = async (req) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    return Object.fromEntries(new URLSearchParams(body));
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}authorize`,
        token_endpoint: `${issuer}oauth/token`,
        jwks_uri: `${issuer}.well-known/jwks.json`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
      });
    }
    if (url.pathname === "/.well-known/jwks.json") return json(res, 200, { keys: [jwk] });
    if (url.pathname === "/authorize" && req.method === "GET") {
      const params = Object.fromEntries(url.searchParams);
      seen.authorize.push(params);
      const hidden = Object.entries(params)
        .map(([name, value]) => `<input type="hidden" name="${name}" value="${value.replace(/"/g, "&quot;")}">`)
        .join("");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(`<!doctype html><html lang="en"><title>Stub identity provider</title><main><h1>Stub identity provider</h1>
<p>Sign in to ${params.client_id} as ${user.name}?</p><form method="post" action="/authorize">${hidden}<button>Continue</button></form></main></html>`);
    }
    if (url.pathname === "/authorize" && req.method === "POST") {
      const form = await readForm(req);
      const code = randomUUID();
      codes.set(code, { ...form, user });
      const back = new URL(form.redirect_uri);
      back.searchParams.set("code", code);
      back.searchParams.set("state", form.state);
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (url.pathname === "/oauth/token" && req.method === "POST") {
      const form = await readForm(req);
      seen.token.push(form);
      if (form.grant_type === "authorization_code") {
        const grant = codes.get(form.code);
        codes.delete(form.code);
        const challenge = form.code_verifier && createHash("sha256").update(form.code_verifier).digest("base64url");
        if (!grant || grant.client_id !== form.client_id || grant.redirect_uri !== form.redirect_uri || grant.code_challenge_method !== "S256" || challenge !== grant.code_challenge) {
          return json(res, 400, { error: "invalid_grant", error_description: "code, client, redirect URI or PKCE verifier do not match" });
        }
        return json(res, 200, tokensFor(grant));
      }
      if (form.grant_type === "refresh_token" && refreshTokens.has(form.refresh_token) && form.client_id === CLIENT_ID) {
        const grant = refreshTokens.get(form.refresh_token);
        refreshTokens.delete(form.refresh_token);
        return json(res, 200, tokensFor(grant));
      }
      return json(res, 400, { error: "invalid_grant" });
    }
    json(res, 404, { error: "not_found" });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  // Auth0 style: the issuer ends with a slash.
  issuer = `http://127.0.0.1:${server.address().port}/`;
  return {
    issuer,
    seen,
    signInAs: (next) => (user = next),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

let provider;
let runtime;
let browser;
const pageErrors = [];

before(async () => {
  provider = await startProvider();
  [runtime, browser] = await Promise.all([
    startRuntime({
      AUTH_JWKS_URL: `${provider.issuer}.well-known/jwks.json`,
      AUTH_OIDC_ISSUER: provider.issuer,
      AUTH_OIDC_AUDIENCE: AUDIENCE,
      AUTH_OIDC_CLIENT_ID: CLIENT_ID,
      AUTH_OIDC_SCOPE: "openid profile email offline_access",
      AUTH_ORG_CLAIM: ORG_CLAIM,
      AUTH_ROLE_CLAIM: ROLES_CLAIM,
      AUTH_ROLE_MAP: "Sales Admin=admin,Sales Rep=member",
    }),
    launchBrowser(),
  ]);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  await runtime?.stop();
  await provider?.stop();
});

async function newPage() {
  const page = await browser.context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  return page;
}

test("signs in through the identity provider: authorization code with PKCE, then silent renewal", { timeout: 120_000 }, async () => {
  const org = uniqueOrg("oidc");
  provider.signInAs({ sub: "auth0|ana", name: "Ana", org, roles: ["Sales Rep", "Sales Admin"] });
  const page = await newPage();
  await page.goto(`${runtime.url}/app/leads?sort=name`);
  const start = page.getByRole("button", { name: "Continue with your company account" });
  await start.waitFor();
  assert.deepEqual((await axe(page)).serious, [], "the sign-in page");
  await screenshot(page, "signin", { readme: true });
  await start.click();

  // At the provider: the request carries the PKCE challenge, the client and the way back.
  await page.getByRole("heading", { name: "Stub identity provider" }).waitFor();
  const asked = provider.seen.authorize.at(-1);
  assert.equal(asked.response_type, "code");
  assert.equal(asked.client_id, CLIENT_ID);
  assert.equal(asked.redirect_uri, `${runtime.url}/app/`);
  assert.equal(asked.code_challenge_method, "S256");
  assert.match(asked.code_challenge, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(asked.audience, AUDIENCE);
  assert.equal(asked.scope, "openid profile email offline_access");
  assert.ok(asked.state && asked.nonce);
  await page.getByRole("button", { name: "Continue" }).click();

  // Back in the app, on the page the sign-in started from, with org and role as the API mapped them.
  await page.getByRole("heading", { level: 1, name: "Leads" }).waitFor();
  await page.locator("#who", { hasText: `auth0|ana · ${org} (admin)` }).waitFor();
  const back = new URL(page.url());
  assert.equal(back.pathname, "/app/leads");
  assert.equal(back.search, "?sort=name");
  const exchange = provider.seen.token.find((t) => t.grant_type === "authorization_code");
  assert.equal(createHash("sha256").update(exchange.code_verifier).digest("base64url"), asked.code_challenge);
  const first = await page.evaluate(() => sessionStorage.getItem("leadheat.token"));
  assert.equal(JSON.parse(Buffer.from(first.split(".")[1], "base64url"))[ORG_CLAIM], org);

  // The token lives 75 s and is renewed a minute before: silently, on the same page.
  await eventually(() => provider.seen.token.some((t) => t.grant_type === "refresh_token"), { timeout: 40_000, what: "a refresh_token grant" });
  const renewed = await eventually(async () => {
    const token = await page.evaluate(() => sessionStorage.getItem("leadheat.token"));
    return token !== first && token;
  }, { what: "the renewed token in sessionStorage" });
  assert.notEqual(renewed, first);
  assert.equal(new URL(page.url()).pathname, "/app/leads");
  // The renewed token works: a write goes through.
  const created = await page.evaluate(async () => {
    const response = await fetch("/v1/leads", {
      method: "POST",
      headers: { Authorization: `Bearer ${sessionStorage.getItem("leadheat.token")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ first_name: "Renewed" }),
    });
    return response.status;
  });
  assert.equal(created, 201);
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test("a sign-in answer that this tab did not start is refused", { timeout: 60_000 }, async () => {
  const page = await newPage();
  await page.goto(`${runtime.url}/app/?code=stolen-code&state=not-ours`);
  await page.getByText("does not belong to a sign-in started in this tab").waitFor();
  await page.getByRole("button", { name: "Continue with your company account" }).waitFor();
  assert.equal(new URL(page.url()).search, "");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("leadheat.token")), null);
  assert.equal(provider.seen.token.filter((t) => t.code === "stolen-code").length, 0);
  await page.close();
});

test("the local runtime's development sign-in needs no terminal", { timeout: 60_000 }, async () => {
  const org = uniqueOrg("devsignin");
  const page = await newPage();
  await page.goto(`${runtime.url}/app/`);
  await page.getByRole("link", { name: "Development sign-in" }).click();
  await page.getByRole("heading", { name: "Sign in as…" }).waitFor();
  assert.deepEqual((await axe(page)).serious, [], "the development sign-in page");
  await page.getByLabel("Organisation").fill(org);
  await page.getByLabel("User").fill("dev-vera");
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Leads" }).waitFor();
  await page.locator("#who", { hasText: `dev-vera · ${org} (viewer)` }).waitFor();
  // The token left the address bar at once.
  assert.equal(new URL(page.url()).hash, "");
  // Bad input is answered on the page, naming what is wrong.
  const form = await fetch(`${runtime.url}/__dev/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ org, sub: "x", role: "owner" }),
    redirect: "manual",
  });
  assert.equal(form.status, 400);
  assert.match(await form.text(), /Role must be one of admin, member, viewer/);
  await page.close();
});
