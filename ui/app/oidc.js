// Sign-in through the company's identity provider: OpenID Connect, Authorization Code with PKCE
// (RFC 7636), the app being a public client.
//
// 1. GET /v1/auth/config names the provider (issuer, client id, scope, audience) and its
//    authorization endpoint, which the API read from the issuer's discovery document.
// 2. beginSignIn() keeps a fresh state, nonce and code verifier in sessionStorage and sends the
//    browser to the authorization endpoint with the verifier's SHA-256 challenge.
// 3. The provider sends the browser back to /app/?code=...&state=...; completeSignIn() checks the
//    state, exchanges the code and the verifier for tokens through POST /v1/auth/token (the API
//    relays it, so this page only ever talks to its own origin and its CSP stays connect-src
//    'self'), checks the ID token's nonce and asks GET /v1/auth/session who the token says the
//    user is (org and role as the API mapped them).
// 4. Renewal: with a refresh token the access token is renewed a minute before it expires,
//    silently; without one the user is told when the session ends and signs in again.

import { claims, getToken, renewToken, setToken, signOut } from "./auth.js";

const PENDING = "leadheat.oidc.pending";
const REFRESH = "leadheat.oidc.refresh";
const RENEW_BEFORE_MS = 60_000;

let config = null;
let renewTimer = null;

/** The deployment's sign-in options ({oidc, dev_sign_in}); failures read as "none offered". */
export function authConfig() {
  config ??= fetch("/v1/auth/config", { headers: { Accept: "application/json" }, cache: "no-store" })
    .then(async (response) => {
      const body = await response.json().catch(() => ({}));
      if (!response.ok) return { oidc: null, dev_sign_in: null, error: body.detail || `HTTP ${response.status}` };
      return body;
    })
    .catch((error) => ({ oidc: null, dev_sign_in: null, error: error.message }));
  return config;
}

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomString = (size) => b64url(crypto.getRandomValues(new Uint8Array(size)));
const redirectUri = () => `${location.origin}/app/`;

async function s256(verifier) {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

/** Sends the browser to the provider's sign-in page. */
export async function beginSignIn(oidc) {
  // 32 random bytes: a 43-character verifier, the shortest RFC 7636 allows, with 256 bits.
  const pending = { state: randomString(16), nonce: randomString(16), verifier: randomString(32), returnTo: location.pathname + location.search };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(oidc.authorization_endpoint);
  const params = {
    response_type: "code",
    client_id: oidc.client_id,
    redirect_uri: redirectUri(),
    scope: oidc.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(pending.verifier),
    code_challenge_method: "S256",
  };
  if (oidc.audience) params.audience = oidc.audience;
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url.href);
}

async function post(path, body, headers = {}) {
  const response = await fetch(path, {
    method: "POST",
    cache: "no-store",
    headers: { Accept: "application/json", "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

/** The token the API gets: the access token when it is a JWT, else the ID token. */
const bearerOf = (tokens) => (tokens.access_token?.split(".").length === 3 ? tokens.access_token : tokens.id_token);

async function sessionOf(token) {
  const response = await fetch("/v1/auth/session", { cache: "no-store", headers: { Accept: "application/json", Authorization: `Bearer ${token}` } });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`The API refused the identity provider's token: ${data.detail || `HTTP ${response.status}`}`);
  return data;
}

/** Stores the tokens: a new session (`renewal` false) or the same session's fresh token. */
async function accept(tokens, { renewal }) {
  const token = bearerOf(tokens);
  if (!token) throw new Error("The identity provider answered without a usable token.");
  const session = await sessionOf(token);
  if (tokens.refresh_token) sessionStorage.setItem(REFRESH, tokens.refresh_token);
  if (renewal) renewToken(token, session);
  else setToken(token, session);
  scheduleRenewal();
}

/**
 * Finishes a sign-in when the provider has sent the browser back (`?code&state`, or `?error`).
 * Resolves to true when the URL was such an answer (the address bar is cleaned either way); throws
 * with a message for the user when the sign-in failed.
 */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", pending?.returnTo || "/app/");
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("This sign-in answer does not belong to a sign-in started in this tab; sign in again.");
  }
  if (params.has("error")) {
    throw new Error(`The identity provider did not sign you in: ${params.get("error_description") || params.get("error")}`);
  }
  const tokens = await post("/v1/auth/token", {
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  if (tokens.id_token && claims(tokens.id_token)?.nonce !== pending.nonce) {
    throw new Error("The identity provider's answer does not match this sign-in (nonce); sign in again.");
  }
  await accept(tokens, { renewal: false });
  return true;
}

/** Plans the renewal of a provider session's token (nothing for development tokens). */
export function scheduleRenewal() {
  clearTimeout(renewTimer);
  const exp = claims(getToken())?.exp;
  if (!getToken() || !sessionStorage.getItem(REFRESH) || typeof exp !== "number") return;
  renewTimer = setTimeout(renew, Math.max(exp * 1000 - Date.now() - RENEW_BEFORE_MS, 0));
}

async function renew() {
  const refreshToken = sessionStorage.getItem(REFRESH);
  if (!refreshToken || !getToken()) return;
  try {
    await accept(await post("/v1/auth/token", { grant_type: "refresh_token", refresh_token: refreshToken }), { renewal: true });
  } catch {
    // The provider would not renew: the session ends with its token, and the user is told so.
    sessionStorage.removeItem(REFRESH);
    const exp = claims(getToken())?.exp;
    const left = typeof exp === "number" ? exp * 1000 - Date.now() : 0;
    renewTimer = setTimeout(() => signOut("Your session has ended; sign in again."), Math.max(left, 0));
  }
}

/** Forgets the provider session (on sign-out). */
export function forgetProviderSession() {
  clearTimeout(renewTimer);
  sessionStorage.removeItem(REFRESH);
}
