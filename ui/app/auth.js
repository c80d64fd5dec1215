// Who is signed in: a bearer token (JWT) kept in sessionStorage, so it lasts for this tab only. It
// comes from the company's identity provider (oidc.js: OpenID Connect with PKCE), or in
// development from the "sign in as" page of the local runtime or a pasted token; the rest of the
// app only ever calls getToken(). A provider's token names org and role its own way, so its
// session (sub, org, role, exp as the API mapped them) is kept beside it and claims() answers
// with that.

const KEY = "leadheat.token";
const SESSION = "leadheat.session";
const listeners = new Set();

export function getToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Starts a session with `token`; `session` is the API's reading of it (GET /v1/auth/session). */
export function setToken(token, session = null) {
  store(token, session);
  listeners.forEach((fn) => fn(token));
}

/** Replaces the current session's token (a renewal): nothing is told, nothing re-renders. */
export function renewToken(token, session = null) {
  store(token, session);
}

function store(token, session) {
  sessionStorage.setItem(KEY, token);
  if (session) sessionStorage.setItem(SESSION, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION);
}

export function signOut(reason) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SESSION);
  listeners.forEach((fn) => fn(null, reason));
}

export function onAuthChange(fn) {
  listeners.add(fn);
}

/**
 * The token's claims ({sub, org, role, exp}) or null when it is not a readable JWT. For the
 * current token, the session the API mapped it to when there is one.
 */
export function claims(token = getToken()) {
  if (!token) return null;
  if (token === getToken()) {
    try {
      const session = JSON.parse(sessionStorage.getItem(SESSION) || "null");
      if (session) return session;
    } catch {}
  }
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** Whether the signed-in user may change leads (members and admins; viewers only read). */
export function canWrite() {
  const role = claims()?.role;
  return role === "admin" || role === "member";
}

/** Why a token cannot be used, or null when it looks usable (the server has the last word). */
export function tokenProblem(token) {
  if (!token) return "Paste a token.";
  const c = claims(token);
  if (!c) return "This is not a JWT: expected three dot-separated parts with a JSON payload.";
  if (!c.org || !c.sub) return "The token has no org or sub claim.";
  if (typeof c.exp === "number" && c.exp * 1000 < Date.now()) return "The token has expired.";
  return null;
}

/** A token handed over in the URL fragment (`#token=...`), removed from the address bar at once. */
export function takeTokenFromUrl() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!match) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}
