#!/usr/bin/env node
// Leadheat's local edge runtime: every worker of wrangler.toml in one workerd process (Miniflare),
// sharing the same local D1 databases (the directory, DB, and the N tenant shards, SHARD_0 ...
// SHARD_{N-1}) and one set of queues, behind one HTTP port.
//
// wrangler.toml stays the single source of truth: each worker's bindings, vars, queue consumer
// options, crons and routes are read from its [env.<function>] through wrangler's own config
// reader, so what runs here is what deploys.
//
// Usage: node dev/runtime.mjs [--port 8787] [--persist .wrangler/state] [--no-migrate]
//
// Routes (as in production; README):
//   /v1/*, /track/*, /webhooks/*      -> the worker whose wrangler `routes` match the path
//   POST /__dev/cron/<function>       -> fires that worker's scheduled handler; optional
//                                        ?cron=<expr> (default: its first cron) and
//                                        ?time=<RFC 3339> (the scheduled time the handler sees)
//   /__dev/workers/<function>/<path>  -> any path of any worker (health routes of cron-only workers)
//   GET/POST /__dev/sign-in           -> the development "sign in as" page (dev/sign_in.mjs)
//   WebSocket upgrades (GET /v1/live)  -> piped byte for byte to Miniflare, which routes them
//
// Before starting, the migrations are applied to every D1 database the API worker binds (each
// binding's own migrations_dir: migrations/directory for DB, migrations/tenant for the shards), one
// database at a time; every worker must bind the same shards.
//
// Rate limit bindings ([[env.<function>.ratelimits]]) whose numbers a worker's [vars] mirror (see
// RATE_LIMIT_VARS) must agree with those vars, and an environment override of such a var also
// changes the binding, so a test can raise a limit as it overrides any other var.

import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { DEV_SIGN_IN_PATH, serveDevSignIn } from "./sign_in.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONFIG = path.join(ROOT, "wrangler.toml");
const FUNCTIONS = ["api", "webhooks", "scoring", "sync"];
// The directory's binding; the tenant shards are SHARD_0 ... SHARD_{N-1}.
const DIRECTORY_BINDING = "DB";
const SHARD_BINDING = /^SHARD_(0|[1-9][0-9]*)$/;
const MAX_BODY_BYTES = 8 * 1024 * 1024;
// Rate limit bindings and the vars that state their numbers to the worker (wrangler.toml).
const RATE_LIMIT_VARS = {
  API_USER_RATE_LIMITER: { limit: "API_RATE_LIMIT_PER_USER", period: "API_RATE_LIMIT_PERIOD_SECONDS" },
  API_ORG_RATE_LIMITER: { limit: "API_RATE_LIMIT_PER_ORG", period: "API_RATE_LIMIT_PERIOD_SECONDS" },
};
// Periods the Workers Rate Limiting binding supports.
const RATE_LIMIT_PERIODS = [10, 60];
// The forwarded request frames its body itself (a streamed body is sent chunked again).
const FRAMING_HEADERS = new Set(["transfer-encoding"]);

function parseArgs(argv) {
  const args = {
    port: Number(process.env.PORT || 8787),
    persist: path.join(ROOT, ".wrangler", "state"),
    migrate: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--port") args.port = Number(argv[++i]);
    else if (arg === "--persist") args.persist = path.resolve(argv[++i]);
    else if (arg === "--no-migrate") args.migrate = false;
    else fail(`unknown argument ${arg}; expected --port N, --persist DIR or --no-migrate`);
  }
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    fail(`invalid port ${args.port}; set PORT or --port to a number from 0 to 65535`);
  }
  return args;
}

function fail(message) {
  console.error(`leadheat runtime: ${message}`);
  process.exit(1);
}

function say(message) {
  console.log(`[leadheat] ${message}`);
}

// Development secrets come from .dev.vars; a fresh checkout gets the committed example.
function ensureDevVars() {
  const devVars = path.join(ROOT, ".dev.vars");
  if (!existsSync(devVars)) {
    copyFileSync(path.join(ROOT, ".dev.vars.example"), devVars);
    say("created .dev.vars from .dev.vars.example (development values only)");
  }
}

// The secret names of .dev.vars.example (NAME=value lines).
function declaredSecrets() {
  return readFileSync(path.join(ROOT, ".dev.vars.example"), "utf8")
    .split("\n")
    .map((line) => line.match(/^([A-Z][A-Z0-9_]*)=/)?.[1])
    .filter(Boolean);
}

// The D1 bindings of one worker, as wrangler reads them.
function d1Databases(fn) {
  return unstable_readConfig({ config: CONFIG, env: fn }).d1_databases || [];
}

// Every worker binds the directory and the same shards, numbered from 0 without gaps (the workers
// count shards up to the first missing SHARD_k, so a gap would hide the shards after it, and a
// worker lacking a shard could not reach the orgs on it). Returns the API worker's D1 databases.
function checkD1Bindings() {
  const describe = (databases) =>
    databases.map((d) => `${d.binding}=${d.database_name}(${d.database_id})`).sort().join(", ");
  const perWorker = FUNCTIONS.map((fn) => ({ fn, databases: d1Databases(fn) }));
  for (const { fn, databases } of perWorker) {
    const bindings = databases.map((d) => d.binding);
    if (!bindings.includes(DIRECTORY_BINDING)) {
      fail(`wrangler.toml: [env.${fn}] has no ${DIRECTORY_BINDING} binding (the directory database)`);
    }
    const others = bindings.filter((b) => b !== DIRECTORY_BINDING);
    const strays = others.filter((b) => !SHARD_BINDING.test(b));
    if (strays.length > 0) {
      fail(`wrangler.toml: [env.${fn}] binds D1 databases ${strays.join(", ")}; expected only DB and SHARD_0 ... SHARD_{N-1}`);
    }
    const shards = others.map((b) => Number(b.slice("SHARD_".length))).sort((a, b) => a - b);
    if (shards.length === 0 || shards.some((k, i) => k !== i)) {
      fail(
        `wrangler.toml: the shard bindings of [env.${fn}] must be SHARD_0 ... SHARD_{N-1} without gaps, ` +
          `found ${others.join(", ") || "none"}`,
      );
    }
  }
  const [api, ...rest] = perWorker;
  for (const worker of rest) {
    if (describe(worker.databases) !== describe(api.databases)) {
      fail(
        `wrangler.toml: every worker must bind the same D1 databases (the directory and the same shards); ` +
          `[env.${api.fn}] binds ${describe(api.databases)} but [env.${worker.fn}] binds ${describe(worker.databases)}. ` +
          `Add a shard as SHARD_k to every [env.*].`,
      );
    }
  }
  return api.databases;
}

// Runs one `wrangler d1 migrations apply` and resolves with its exit code and output.
function applyOne(database, persist) {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  const args = ["d1", "migrations", "apply", database.database_name, "--local", "--env", "api", "--persist-to", persist, "-c", CONFIG];
  return new Promise((resolve) => {
    const child = spawn(wrangler, args, { cwd: ROOT, env: { ...process.env, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", (error) => resolve({ database, code: null, output: `${output}${error.message}\n` }));
    child.on("close", (code, signal) => resolve({ database, code, output: signal ? `${output}killed by ${signal}\n` : output }));
  });
}

// Applies each database's migrations (the directory's to DB, the tenant set to every shard) one
// database at a time: local D1 databases share one persistence directory, and two wrangler
// processes opening it at once can fail with SQLITE_BUSY ("database is locked").
async function applyMigrations(persist, databases) {
  say(`applying D1 migrations to ${databases.length} local databases in ${persist}`);
  const results = [];
  for (const database of databases) {
    results.push(await applyOne(database, persist));
  }
  const failed = [];
  for (const { database, code, output } of results) {
    const what = `${database.binding} (${database.database_name}, ${database.migrations_dir})`;
    if (code === 0) {
      say(`migrated ${what}`);
    } else {
      failed.push(what);
      console.error(`[leadheat] applying the migrations to ${what} failed (exit code ${code}):`);
      process.stderr.write(output.endsWith("\n") ? output : `${output}\n`);
    }
  }
  if (failed.length > 0) {
    fail(`applying the D1 migrations failed for ${failed.join(", ")} (output above); fix the migration or run \`make reset\``);
  }
}

// A wrangler route pattern such as "leadheat.example.com/v1/*" serves every host locally, so only
// its path part matters here.
function routePath(pattern) {
  const raw = typeof pattern === "string" ? pattern : pattern.pattern;
  const slash = raw.indexOf("/");
  return slash === -1 ? "/*" : raw.slice(slash);
}

function routePathMatcher(pathPattern) {
  const regex = new RegExp(
    "^" + pathPattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
  );
  return (pathname) => regex.test(pathname);
}

// The rate limit bindings with the numbers of their vars: `declared` are the worker's vars as
// wrangler.toml states them (which must equal the binding's numbers), `effective` the vars after
// environment overrides (which the binding then takes).
function rateLimitsFromVars(fn, ratelimits, declared, effective) {
  const result = {};
  for (const [name, binding] of Object.entries(ratelimits || {})) {
    const mirror = RATE_LIMIT_VARS[name];
    const simple = { ...binding.simple };
    for (const [field, varName] of Object.entries(mirror || {})) {
      if (Number(declared[varName]) !== simple[field]) {
        fail(
          `wrangler.toml: [env.${fn}.vars] ${varName} = ${JSON.stringify(declared[varName])} must equal ` +
            `simple.${field} = ${simple[field]} of the ${name} rate limit binding; change both together`,
        );
      }
      const value = Number(effective[varName]);
      if (!Number.isInteger(value) || value < 1) {
        fail(`${varName} must be a whole number from 1, not ${JSON.stringify(effective[varName])}`);
      }
      simple[field] = value;
    }
    if (!RATE_LIMIT_PERIODS.includes(simple.period)) {
      fail(`the period of the ${name} rate limit binding must be 10 or 60 seconds, not ${simple.period}`);
    }
    result[name] = { ...binding, simple };
  }
  return result;
}

function workerDefinitions() {
  return FUNCTIONS.map((fn) => {
    const config = unstable_readConfig({ config: CONFIG, env: fn });
    const { workerOptions, main } = unstable_getMiniflareWorkerOptions(CONFIG, fn);
    const scriptPath = path.resolve(ROOT, main);
    if (!existsSync(scriptPath)) {
      fail(`${path.relative(ROOT, scriptPath)} is missing; build the workers first with \`make build\``);
    }
    // [vars] and secrets can be overridden by an environment variable of the same name, also a
    // secret that an older local .dev.vars lacks but .dev.vars.example declares.
    const bindings = { ...(workerOptions.bindings || {}) };
    for (const name of new Set([...Object.keys(bindings), ...declaredSecrets()])) {
      if (process.env[name] !== undefined) bindings[name] = process.env[name];
    }
    const ratelimits = rateLimitsFromVars(fn, workerOptions.ratelimits, workerOptions.bindings || {}, bindings);
    // Only this runtime serves the development sign-in page, and only it tells the API so.
    if (fn === "api") bindings.DEV_SIGN_IN_PATH = DEV_SIGN_IN_PATH;
    return {
      fn,
      crons: config.triggers?.crons || [],
      matchers: (config.routes || []).map(routePath).map(routePathMatcher),
      options: {
        ...workerOptions,
        // Miniflare's own router then dispatches requests to this worker with their original URL.
        routes: (config.routes || []).map((route) => "*" + routePath(route)),
        bindings,
        ratelimits,
        name: config.name,
        modules: true,
        scriptPath,
        modulesRoot: path.dirname(scriptPath),
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }, ...(workerOptions.modulesRules || [])],
      },
    };
  });
}

// A body of unknown length (Transfer-Encoding: chunked) is streamed to the worker as it arrives,
// so the worker's own cap can stop an endless upload early; MAX_BODY_BYTES only bounds the
// runtime itself. A worker may answer before reading the whole body (413), and workerd then
// resets the connection: each chunk waits for one turn of the event loop, so that an answer
// already on its way is read before the next write meets the reset.
async function* cappedChunks(req) {
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error("body too large for the local runtime");
    await new Promise((resolve) => setImmediate(resolve));
    yield chunk;
  }
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    // The workers enforce their own, smaller limits; this only protects the runtime itself.
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  ensureDevVars();
  const databases = checkD1Bindings();
  if (args.migrate) await applyMigrations(args.persist, databases);

  const workers = workerDefinitions();
  say(`starting workers: ${workers.map((w) => w.options.name).join(", ")}`);
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    log: new Log(LogLevel.INFO),
    // The `cf` object would be fetched from the internet, which these machines cannot reach.
    cf: false,
    d1Persist: path.join(args.persist, "v3", "d1"),
    workers: workers.map((w) => w.options),
  });
  const miniflareUrl = await mf.ready;
  const handles = new Map();
  for (const w of workers) handles.set(w.fn, await mf.getWorker(w.options.name));

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, `http://${req.headers.host || "127.0.0.1"}`);
      const cron = url.pathname.match(/^\/__dev\/cron\/([a-z]+)\/?$/);
      if (cron) {
        if (req.method !== "POST") return sendJson(res, 405, { error: "use POST" });
        const worker = workers.find((w) => w.fn === cron[1]);
        if (!worker) return sendJson(res, 404, { error: `no function named ${cron[1]}` });
        const cronExpr = url.searchParams.get("cron") || worker.crons[0] || "* * * * *";
        const time = url.searchParams.get("time");
        const scheduledTime = time ? new Date(time) : new Date();
        if (Number.isNaN(scheduledTime.getTime())) return sendJson(res, 400, { error: "time must be RFC 3339" });
        const result = await handles.get(worker.fn).scheduled({ cron: cronExpr, scheduledTime });
        return sendJson(res, 200, { function: worker.fn, cron: cronExpr, scheduled_time: scheduledTime.toISOString(), outcome: result.outcome });
      }

      if (url.pathname === DEV_SIGN_IN_PATH) {
        return await serveDevSignIn(req, res, workers.find((w) => w.fn === "api").options.bindings.AUTH_JWT_SECRET);
      }

      let target;
      let forwardPath = url.pathname;
      const direct = url.pathname.match(/^\/__dev\/workers\/([a-z]+)(\/.*)?$/);
      if (direct) {
        target = workers.find((w) => w.fn === direct[1]);
        forwardPath = direct[2] || "/";
      } else {
        target = workers.find((w) => w.matchers.some((matches) => matches(url.pathname)));
      }
      if (!target) {
        return sendJson(res, 404, { error: `no worker serves ${url.pathname}` });
      }

      const bodiless = req.method === "GET" || req.method === "HEAD";
      const streamed = !bodiless && req.headers["content-length"] === undefined && req.headers["transfer-encoding"] !== undefined;
      const body = bodiless ? undefined : streamed ? ReadableStream.from(cappedChunks(req)) : await readBody(req);
      if (body === null) return sendJson(res, 413, { error: "body too large for the local runtime" });
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        // Miniflare's entry worker refuses (403 "Invalid Origin header") a request whose Origin is
        // not localhost, so a browser page on another origin could never reach the API locally.
        // The workers answer CORS for any origin and never read Origin, so it is not forwarded.
        if (name === "origin" || FRAMING_HEADERS.has(name)) continue;
        if (Array.isArray(value)) value.forEach((v) => headers.append(name, v));
        else if (value !== undefined) headers.set(name, value);
      }
      const init = { method: req.method, headers, body, redirect: "manual", ...(streamed ? { duplex: "half" } : {}) };
      const forwardUrl = new URL(forwardPath + url.search, url.origin);
      // Routed paths go through Miniflare's router (the worker sees the URL the client used);
      // /__dev/workers/ reaches workers without routes through their handle.
      const response = direct
        ? await handles.get(target.fn).fetch(forwardUrl, init)
        : await mf.dispatchFetch(forwardUrl, init);
      const outHeaders = {};
      response.headers.forEach((value, name) => {
        outHeaders[name] = value;
      });
      const payload = Buffer.from(await response.arrayBuffer());
      // The body is re-framed here, so the worker's own framing headers no longer apply.
      delete outHeaders["transfer-encoding"];
      outHeaders["content-length"] = String(payload.length);
      res.writeHead(response.status, outHeaders);
      res.end(payload);
    } catch (error) {
      console.error("[leadheat] runtime error:", error);
      if (!res.headersSent) sendJson(res, 502, { error: "the local runtime failed to reach the worker" });
      else res.end();
    }
  });

  // WebSockets: the upgrade request and then both directions are piped unchanged to Miniflare's
  // own socket, which routes by the same wrangler routes. Origin is dropped as above.
  server.on("upgrade", (req, socket, head) => {
    const upstream = net.connect(Number(miniflareUrl.port), miniflareUrl.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i];
        if (name.toLowerCase() === "origin") continue;
        const value = name.toLowerCase() === "host" ? miniflareUrl.host : req.rawHeaders[i + 1];
        lines.push(`${name}: ${value}`);
      }
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      if (head?.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const close = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on("error", close);
    socket.on("error", close);
    upstream.on("close", close);
    socket.on("close", close);
  });

  server.keepAliveTimeout = 30_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(args.port, "127.0.0.1", resolve);
  });
  const port = server.address().port;

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    say(`${signal} received, stopping`);
    server.close();
    server.closeAllConnections();
    await mf.dispose();
    process.exit(0);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  // Tests wait for this exact line.
  console.log(`[leadheat] ready on http://127.0.0.1:${port}`);
}

main().catch((error) => {
  console.error(error);
  fail("failed to start (error above)");
});
