// Leadheat's sales UI: routing under /app/, the session, and live updates.
//
// Live updates: the org's WebSocket (live.js) tells the page the moment a change is committed;
// the page then asks GET /v1/changes?since=<cursor> (three indexed MAX() queries on the server) and
// the view on screen refetches what it shows. The same probe is polled as the fallback: every 2
// seconds while there is no socket, every 30 seconds as a safety net while there is one. Polling
// pauses while the tab is hidden.

import { api, qs } from "./api.js";
import { claims, getToken, onAuthChange, setToken, signOut, takeTokenFromUrl } from "./auth.js";
import { h, notify, replace } from "./dom.js";
import { openLiveSocket } from "./live.js";
import { completeSignIn, forgetProviderSession, scheduleRenewal } from "./oidc.js";
import * as board from "./views/board.js";
import * as dashboard from "./views/dashboard.js";
import * as feed from "./views/feed.js";
import * as lead from "./views/lead.js";
import * as leads from "./views/leads.js";
import * as settingsFields from "./views/settings_fields.js";
import * as settingsScoring from "./views/settings_scoring.js";
import * as settingsStages from "./views/settings_stages.js";
import * as settingsTracking from "./views/settings_tracking.js";
import * as settingsIntegrations from "./views/settings_integrations.js";
import * as signin from "./views/signin.js";

const POLL_MS = 2000;
const SOCKET_POLL_MS = 30_000;
const FIRST_PROBE_WAIT_MS = 1_500;

const ROUTES = [
  { pattern: /^\/app\/leads\/?$/, view: leads, nav: "leads" },
  { pattern: /^\/app\/leads\/([^/]+)\/?$/, view: lead, nav: "leads" },
  { pattern: /^\/app\/board\/?$/, view: board, nav: "board" },
  { pattern: /^\/app\/dashboard\/?$/, view: dashboard, nav: "dashboard" },
  { pattern: /^\/app\/feed\/?$/, view: feed, nav: "feed" },
  { pattern: /^\/app\/settings\/?$/, redirect: "/app/settings/scoring" },
  { pattern: /^\/app\/settings\/scoring\/?$/, view: settingsScoring, nav: "settings" },
  { pattern: /^\/app\/settings\/fields\/?$/, view: settingsFields, nav: "settings" },
  { pattern: /^\/app\/settings\/stages\/?$/, view: settingsStages, nav: "settings" },
  { pattern: /^\/app\/settings\/tracking\/?$/, view: settingsTracking, nav: "settings" },
  { pattern: /^\/app\/settings\/integrations\/?$/, view: settingsIntegrations, nav: "integrations" },
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
  if (route.redirect) return navigate(route.redirect, { replace: true });
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
  for (const item of document.querySelectorAll("[data-admin-only]")) item.hidden = c?.role !== "admin";
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
// A notice that arrived while a probe was already running: probe again right after it.
let noticePending = false;
let liveSocket = null;
let transport = "poll";

function setLive(state, text, title) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  live.dataset.transport = transport;
  document.getElementById("live-text").textContent = text;
  live.title = title || text;
}

const liveLabel = () => (transport === "socket" ? "Live" : "Live (polling)");

/**
 * Asks whether anything changed and refreshes the view if so. `notified`: a notice said so, so
 * the view refreshes even when the cursor did not move (a rescoring that changed scores only).
 */
async function poll({ notified = false } = {}) {
  clearTimeout(pollTimer);
  if (!getToken()) return;
  if (polling) {
    noticePending ||= notified;
    return;
  }
  if (document.hidden) {
    noticePending ||= notified;
    pollTimer = setTimeout(poll, POLL_MS);
    return;
  }
  polling = true;
  notified ||= noticePending;
  noticePending = false;
  try {
    const answer = await api(`/v1/changes${qs({ since: cursor })}`);
    const changed = cursor !== null && (answer.changed || notified);
    cursor = answer.cursor;
    setLive("on", liveLabel(), `Live updates on (${transport === "socket" ? "WebSocket" : "polling"}); last check ${new Date().toLocaleTimeString()}`);
    if (changed && current?.refresh) {
      setLive("sync", "Updating…");
      await current.refresh();
      setLive("on", liveLabel(), `Updated at ${new Date().toLocaleTimeString()}`);
    }
  } catch (error) {
    setLive(error?.status === 501 ? "off" : "error", error?.status === 501 ? "Live off" : "Reconnecting…", error?.message);
  } finally {
    polling = false;
  }
  if (!getToken()) return;
  if (noticePending) {
    noticePending = false;
    poll({ notified: true });
  } else {
    pollTimer = setTimeout(poll, transport === "socket" ? SOCKET_POLL_MS : POLL_MS);
  }
}

function startLive() {
  liveSocket?.close();
  transport = "poll";
  liveSocket = getToken()
    ? openLiveSocket({
        token: getToken,
        onNotice: () => poll({ notified: true }),
        onTransport: (next, detail) => {
          transport = next;
          setLive("on", liveLabel(), next === "socket" ? "Live updates over WebSocket" : `Live updates by polling: the WebSocket ${detail}`);
          // Catch up on anything missed while the socket was down, and poll at the new pace.
          poll();
        },
      })
    : null;
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

/**
 * Starts a session's page: the first changes probe sets the cursor BEFORE the view reads its
 * data, so a change committed while the view loads moves the cursor past it and is picked up by
 * the next probe (the socket's opening triggers one). Without a token there is nothing to probe.
 */
async function start({ focus = false } = {}) {
  cursor = null;
  startLive();
  // A slow probe must not hold the page back for long.
  await Promise.race([poll(), new Promise((resolve) => setTimeout(resolve, FIRST_PROBE_WAIT_MS))]);
  render({ focus });
}

onAuthChange((token, reason) => {
  if (!token) forgetProviderSession();
  if (!token && reason) notify(reason, "error");
  start({ focus: true });
});

// A token handed over in the URL (the development sign-in page), the identity provider's answer
// (/app/?code=...&state=...), or the session this tab already has.
const handed = takeTokenFromUrl();
if (handed) setToken(handed);
else
  completeSignIn()
    .then((signedIn) => {
      if (signedIn) return;
      scheduleRenewal();
      start();
    })
    .catch((error) => {
      notify(error.message, "error");
      start();
    });
