// Who is signed in. Development: a pasted bearer token (JWT) kept in sessionStorage, so it lasts
// for this tab only. Production takes the JWT from the company's identity provider instead (an
// OIDC/SAML login in front of the app hands the token over); the rest of the app only ever calls
// getToken().

const KEY = "leadheat.token";
const listeners = new Set();

export function getToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token);
  listeners.forEach((fn) => fn(token));
}

export function signOut(reason) {
  sessionStorage.removeItem(KEY);
  listeners.forEach((fn) => fn(null, reason));
}

export function onAuthChange(fn) {
  listeners.add(fn);
}

/** The token's claims ({sub, org, role, exp}) or null when it is not a readable JWT. */
export function claims(token = getToken()) {
  if (!token) return null;
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
