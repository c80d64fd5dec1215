// Leadheat's sales UI: routing under /app/, the session, and live updates.
//
// Live updates poll GET /v1/changes?since=<cursor> every 2 seconds (a pair of indexed MAX()
// queries on the server); when it answers changed, the view on screen refetches what it shows.
// Polling pauses while the tab is hidden.

import { api, qs } from "./api.js";
import { claims, getToken, onAuthChange, setToken, signOut, takeTokenFromUrl } from "./auth.js";
import { h, notify, replace } from "./dom.js";
import * as board from "./views/board.js";
import * as dashboard from "./views/dashboard.js";
import * as feed from "./views/feed.js";
import * as lead from "./views/lead.js";
import * as leads from "./views/leads.js";
import * as signin from "./views/signin.js";

const POLL_MS = 2000;

const ROUTES = [
  { pattern: /^\/app\/leads\/?$/, view: leads, nav: "leads" },
  { pattern: /^\/app\/leads\/([^/]+)\/?$/, view: lead, nav: "leads" },
  { pattern: /^\/app\/board\/?$/, view: board, nav: "board" },
  { pattern: /^\/app\/dashboard\/?$/, view: dashboard, nav: "dashboard" },
  { pattern: /^\/app\/feed\/?$/, view: feed, nav: "feed" },
];

const main = document.getElementById("main");
let current = null;

function navigate(url, { replace: replaceEntry = false } = {}) {
  history[replaceEntry ? "replaceState" : "pushState"](null, "", url);
  render({ focus: true });
}

/** Rewrites the current page's query string (filters, sort, window) without re-rendering. */
function setQuery(params) {
  history.replaceState(null, "", `${location.pathname}${qs(params)}`);
}

function setTitle(text) {
  document.title = `${text} · Leadheat`;
}

function render({ focus = false } = {}) {
  current?.unmount?.();
  current = null;
  updateSession();
  const ctx = { navigate, setQuery, setTitle, query: new URLSearchParams(location.search), params: [] };
  if (!getToken()) {
    markNav(null);
    current = signin.mount(main, ctx);
    return;
  }
  const path = location.pathname;
  if (/^\/app\/?$/.test(path) || path === "/app/index.html") {
    navigate(`/app/leads${location.search}`, { replace: true });
    return;
  }
  const route = ROUTES.find((r) => r.pattern.test(path));
  if (!route) {
    markNav(null);
    setTitle("Not found");
    replace(main, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, h("a", { href: "/app/leads" }, "Go to the leads")));
    return;
  }
  markNav(route.nav);
  ctx.params = path.match(route.pattern).slice(1).map(decodeURIComponent);
  current = route.view.mount(main, ctx);
  if (focus) main.querySelector("h1")?.focus({ preventScroll: true });
  if (focus) window.scrollTo(0, 0);
}

function markNav(active) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function updateSession() {
  const who = document.getElementById("who");
  const button = document.getElementById("signout");
  const c = claims();
  document.querySelector("nav[aria-label=Main]").hidden = !getToken();
  if (c) {
    who.textContent = `${c.sub} · ${c.org}${c.role ? ` (${c.role})` : ""}`;
    button.hidden = false;
  } else {
    who.textContent = "";
    button.hidden = true;
    setLive("off", "Offline");
  }
}

// ------------------------------------------------------------------------------------------------
// Live updates

let cursor = null;
let pollTimer = null;
let polling = false;

function setLive(state, text, title) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  document.getElementById("live-text").textContent = text;
  live.title = title || text;
}

async function poll() {
  clearTimeout(pollTimer);
  if (!getToken() || polling) return;
  if (document.hidden) {
    pollTimer = setTimeout(poll, POLL_MS);
    return;
  }
  polling = true;
  try {
    const answer = await api(`/v1/changes${qs({ since: cursor })}`);
    const changed = cursor !== null && answer.changed;
    cursor = answer.cursor;
    setLive("on", "Live", `Live updates on; last check ${new Date().toLocaleTimeString()}`);
    if (changed && current?.refresh) {
      setLive("sync", "Updating…");
      await current.refresh();
      setLive("on", "Live", `Updated at ${new Date().toLocaleTimeString()}`);
    }
  } catch (error) {
    setLive(error?.status === 501 ? "off" : "error", error?.status === 501 ? "Live off" : "Reconnecting…", error?.message);
  } finally {
    polling = false;
  }
  if (getToken()) pollTimer = setTimeout(poll, POLL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && getToken()) poll();
});

// ------------------------------------------------------------------------------------------------
// Start

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/app")) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => render({ focus: true }));

document.getElementById("signout").addEventListener("click", () => signOut());

onAuthChange((token, reason) => {
  cursor = null;
  if (!token && reason) notify(reason, "error");
  render({ focus: true });
  if (token) poll();
});

const handed = takeTokenFromUrl();
if (handed) setToken(handed);
else {
  render();
  poll();
}
