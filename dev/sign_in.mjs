// Development sign-in for `make dev`: a "sign in as" page that the local runtime serves at
// /__dev/sign-in, so trying the sales UI needs no terminal. It mints an HS256 token with the API
// worker's development AUTH_JWT_SECRET and hands it to the app in the URL fragment
// (/app/#token=...), as `make token` would. Only dev/runtime.mjs serves it: nothing of it is
// deployed, and the API worker learns its path from the DEV_SIGN_IN_PATH binding that only the
// local runtime sets (GET /v1/auth/config tells the UI).

import { createHmac } from "node:crypto";

export const DEV_SIGN_IN_PATH = "/__dev/sign-in";

const ROLES = ["admin", "member", "viewer"];
// As `make token`: twelve hours, well within the API's 24-hour maximum.
const TOKEN_TTL_SECONDS = 12 * 60 * 60;
const MAX_FIELD = 64;
const MAX_FORM_BYTES = 4096;

const b64url = (value) => Buffer.from(value).toString("base64url");

export function mintDevToken(secret, { sub, org, role }) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify({ sub, org, role, iat: now, exp: now + TOKEN_TTL_SECONDS }))}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, { error = "", org = "acme", sub = "dev-user", role = "admin" } = {}) {
  const options = ROLES.map((r) => `<option value="${r}"${r === role ? " selected" : ""}>${r}</option>`).join("");
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in · Leadheat</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin-top:1rem;font-weight:600}input,select{font:inherit;width:100%;padding:.4rem;box-sizing:border-box}
button{font:inherit;margin-top:1.5rem;padding:.5rem 1.2rem}.error{color:#a4001d}.hint{color:#555}</style></head>
<body><main>
<h1>Sign in as…</h1>
<p class="hint">Development only: the local runtime signs a token with the development AUTH_JWT_SECRET. A deployed Leadheat has no such page.</p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="${DEV_SIGN_IN_PATH}">
<label for="org">Organisation</label><input id="org" name="org" required maxlength="${MAX_FIELD}" value="${escape(org)}">
<label for="sub">User</label><input id="sub" name="sub" required maxlength="${MAX_FIELD}" value="${escape(sub)}">
<label for="role">Role</label><select id="role" name="role">${options}</select>
<button type="submit">Sign in</button>
</form></main></body></html>`);
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_FORM_BYTES) return null;
  }
  return new URLSearchParams(body);
}

/** Serves GET (the form) and POST (sign in) of the development sign-in page. */
export async function serveDevSignIn(req, res, secret) {
  if (req.method === "GET" || req.method === "HEAD") return page(res, 200);
  if (req.method !== "POST") {
    res.writeHead(405, { allow: "GET, POST" });
    return res.end();
  }
  const form = await readForm(req);
  if (!form) return page(res, 413, { error: "The form is too large." });
  const fields = { org: (form.get("org") || "").trim(), sub: (form.get("sub") || "").trim(), role: form.get("role") || "" };
  const problem =
    !fields.org || !fields.sub
      ? "Organisation and user are required."
      : fields.org.length > MAX_FIELD || fields.sub.length > MAX_FIELD
        ? `Organisation and user are at most ${MAX_FIELD} characters.`
        : !ROLES.includes(fields.role)
          ? `Role must be one of ${ROLES.join(", ")}.`
          : !secret
            ? "AUTH_JWT_SECRET is not set for the API worker (.dev.vars), so no development token can be signed."
            : "";
  if (problem) return page(res, 400, { ...fields, error: problem });
  res.writeHead(303, { location: `/app/#token=${encodeURIComponent(mintDevToken(secret, fields))}`, "cache-control": "no-store" });
  res.end();
}
