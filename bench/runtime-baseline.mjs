#!/usr/bin/env node
// The benchmarks' baseline runtime: the bare worker of bench/baseline served the same way
// dev/runtime.mjs serves the real workers (Miniflare, one workerd process, the worker's options
// derived from its wrangler config by wrangler's own reader, local D1 persisted under --persist,
// the same Node HTTP front), so that a ratio against it measures the workers, not the machinery.
// It is a separate process and config on purpose: the baseline worker is never part of the
// project's wrangler.toml and is never deployed.
//
// Usage: node bench/runtime-baseline.mjs [--port 0] [--persist DIR] [--no-migrate]
// Prints `[leadheat-baseline] ready on http://127.0.0.1:N` when it serves.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, "..");
const CONFIG = path.join(BENCH, "baseline", "wrangler.toml");
const MAX_BODY_BYTES = 8 * 1024 * 1024;

function fail(message) {
  console.error(`leadheat baseline runtime: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { port: 0, persist: path.join(ROOT, "target", "bench-baseline-state"), migrate: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--port") args.port = Number(argv[++i]);
    else if (arg === "--persist") args.persist = path.resolve(argv[++i]);
    else if (arg === "--no-migrate") args.migrate = false;
    else fail(`unknown argument ${arg}; expected --port N, --persist DIR or --no-migrate`);
  }
  return args;
}

// The migrations of every D1 database the baseline binds (its DB: the tenant set, on the file of
// the workers' SHARD_0, which has the same database_id), applied the same way as dev/runtime.mjs
// applies them: one `wrangler d1 migrations apply` per database, all at once.
async function applyMigrations(persist) {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  const databases = unstable_readConfig({ config: CONFIG }).d1_databases || [];
  const results = await Promise.all(
    databases.map(
      (database) =>
        new Promise((resolve) => {
          const args = ["d1", "migrations", "apply", database.database_name, "--local", "--persist-to", persist, "-c", CONFIG];
          const child = spawn(wrangler, args, { cwd: ROOT, env: { ...process.env, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
          let output = "";
          child.stdout.on("data", (chunk) => (output += chunk));
          child.stderr.on("data", (chunk) => (output += chunk));
          child.on("error", (error) => resolve({ database, code: null, output: `${output}${error.message}\n` }));
          child.on("close", (code) => resolve({ database, code, output }));
        }),
    ),
  );
  const failed = results.filter((r) => r.code !== 0);
  for (const { database, code, output } of failed) {
    console.error(`[leadheat-baseline] applying the migrations to ${database.binding} (${database.database_name}) failed (exit code ${code}):`);
    process.stderr.write(output);
  }
  if (failed.length > 0) fail("applying the D1 migrations failed (output above)");
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.migrate) await applyMigrations(args.persist);

  const config = unstable_readConfig({ config: CONFIG });
  const { workerOptions, main: mainScript } = unstable_getMiniflareWorkerOptions(CONFIG);
  const scriptPath = path.resolve(path.dirname(CONFIG), mainScript || config.main);
  if (!existsSync(scriptPath)) {
    fail(`${path.relative(ROOT, scriptPath)} is missing; build it with \`make bench\` (worker-build --release bench/baseline)`);
  }
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    log: new Log(LogLevel.INFO),
    cf: false,
    d1Persist: path.join(args.persist, "v3", "d1"),
    workers: [
      {
        ...workerOptions,
        name: config.name,
        modules: true,
        scriptPath,
        modulesRoot: path.dirname(scriptPath),
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }, ...(workerOptions.modulesRules || [])],
      },
    ],
  });
  await mf.ready;
  const worker = await mf.getWorker(config.name);

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, `http://${req.headers.host || "127.0.0.1"}`);
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await readBody(req);
      if (body === null) {
        res.writeHead(413);
        return res.end();
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (Array.isArray(value)) value.forEach((v) => headers.append(name, v));
        else if (value !== undefined) headers.set(name, value);
      }
      const response = await worker.fetch(new URL(url.pathname + url.search, url.origin), {
        method: req.method,
        headers,
        body,
        redirect: "manual",
      });
      const outHeaders = {};
      response.headers.forEach((value, name) => {
        outHeaders[name] = value;
      });
      const payload = Buffer.from(await response.arrayBuffer());
      delete outHeaders["transfer-encoding"];
      outHeaders["content-length"] = String(payload.length);
      res.writeHead(response.status, outHeaders);
      res.end(payload);
    } catch (error) {
      console.error("[leadheat-baseline] runtime error:", error);
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.end();
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(args.port, "127.0.0.1", resolve);
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeAllConnections();
    await mf.dispose();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  console.log(`[leadheat-baseline] ready on http://127.0.0.1:${server.address().port}`);
}

main().catch((error) => {
  console.error(error);
  fail("failed to start (error above)");
});
