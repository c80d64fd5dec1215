// Sign-in: through the company's identity provider when the deployment has one (oidc.js), the
// local runtime's "sign in as" page in development, and a pasted bearer token (development and
// service tokens) in any case. GET /v1/auth/config says which are offered.

import { api } from "../api.js";
import { setToken, tokenProblem } from "../auth.js";
import { h, replace } from "../dom.js";
import { authConfig, beginSignIn } from "../oidc.js";

export function mount(root, ctx) {
  ctx.setTitle("Sign in");
  const error = h("p", { id: "token-error", class: "field-error", hidden: true });
  const input = h("textarea", {
    id: "token",
    name: "token",
    rows: "5",
    required: true,
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "token-hint token-error",
  });
  const button = h("button", { type: "submit", class: "btn btn--primary" }, "Sign in");
  const options = h("div", { class: "signin-options", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "signin card", novalidate: true },
    h("h1", { tabindex: "-1" }, "Sign in to Leadheat"),
    options,
    h(
      "p",
      { id: "token-hint", class: "hint" },
      "Or paste a bearer token (an HS256 JWT with sub, org, role and exp, signed with the deployment's AUTH_JWT_SECRET: development and service tokens). ",
      "It is kept for this browser tab only (sessionStorage).",
    ),
    h("div", { class: "field" }, h("label", { for: "token" }, "Token"), input, error),
    h("div", { class: "actions" }, button),
  );

  input.addEventListener("input", () => {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    const problem = tokenProblem(token);
    const show = (text) => {
      error.textContent = text;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    };
    if (problem) return show(problem);
    button.disabled = true;
    button.textContent = "Checking…";
    try {
      // The cheapest authenticated call: proves the server accepts the token.
      await api("/v1/changes", { headers: { Authorization: `Bearer ${token}` } });
      setToken(token);
    } catch (e) {
      show(e.status === 401 ? `The server refused this token: ${e.message}` : `Could not check the token: ${e.message}`);
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });

  let mounted = true;
  authConfig().then(({ oidc, dev_sign_in: devSignIn, error: configError }) => {
    if (!mounted) return;
    const items = [];
    if (oidc) {
      const status = h("p", { class: "field-error", role: "alert", hidden: true });
      const start = h("button", { type: "button", class: "btn btn--primary" }, "Continue with your company account");
      start.addEventListener("click", async () => {
        start.disabled = true;
        try {
          await beginSignIn(oidc);
        } catch (e) {
          start.disabled = false;
          status.textContent = `Could not start the sign-in: ${e.message}`;
          status.hidden = false;
        }
      });
      items.push(h("div", { class: "actions" }, start), status);
    }
    if (devSignIn) {
      items.push(h("p", {}, h("a", { href: devSignIn, class: "btn" }, "Development sign-in"), " (the local runtime's sign in as… page)"));
    }
    if (configError) items.push(h("p", { class: "field-error" }, `Sign-in through the identity provider is unavailable right now: ${configError}`));
    replace(options, ...items);
  });

  replace(root, h("div", { class: "signin-wrap" }, form));
  return {
    unmount() {
      mounted = false;
    },
  };
}
