// Development sign-in: paste a bearer token. Production takes the JWT from the company's identity
// provider (see auth.js); this form is the development stand-in for that hand-over.

import { api } from "../api.js";
import { setToken, tokenProblem } from "../auth.js";
import { h, replace } from "../dom.js";

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
  const form = h(
    "form",
    { class: "signin card", novalidate: true },
    h("h1", { tabindex: "-1" }, "Sign in to Leadheat"),
    h(
      "p",
      { id: "token-hint", class: "hint" },
      "Development sign-in: paste a bearer token (an HS256 JWT with sub, org, role and exp, signed with the development AUTH_JWT_SECRET). ",
      "It is kept for this browser tab only (sessionStorage). In production the app receives the JWT from your company's identity provider instead.",
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

  replace(root, h("div", { class: "signin-wrap" }, form));
  return {};
}
