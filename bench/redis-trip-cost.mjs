// What Keyport adds to one call on PostgreSQL + Redis (the scale-out setup), next to the bare
// proxy, for a call on the owner's own key and a platform call on a plan that allows own keys
// (the owner has none), both owners with a monthly budget: the calls whose Redis round trips
// before forwarding the gateway keeps to one. Calls go one at a time (no queueing), interleaved
// across the three targets, so the difference is the path's own latency.
//
//   npm run build && node bench/redis-trip-cost.mjs [--calls 3000] [--root <checkout with dist/>]
//
// Needs PostgreSQL (`BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/test: a
// database is created and dropped) and Redis (`BENCH_REDIS_URL`, default redis://127.0.0.1:6379:
// keys under a fresh prefix, deleted afterwards). `--root` runs another checkout's Keyport (built)
// against the same setup, for a paired comparison.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import pg from "pg";
import { Pool } from "undici";
import { keyportNodeOptions, newSecrets } from "./keyport-setup.mjs";
import { freePort, startChild, stopChild, waitUntilAnswering } from "./processes.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { calls: { type: "string", default: "3000" }, root: { type: "string", default: path.join(here, "..") } } });
const calls = Number(values.calls);
const root = path.resolve(values.root);
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

const label = randomBytes(4).toString("hex");
const database = `keyport_trip_${label}`;
const prefix = `keyport:bench-trip:${label}:`;
const work = mkdtempSync(path.join(tmpdir(), "keyport-trip-"));
const secrets = newSecrets();
const admin = new pg.Client({ connectionString: postgresUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const children = [];

try {
  const mockPort = await freePort();
  const mock = startChild({ name: "mock", args: [path.join(here, "../bin/keyport.js"), "mock-provider", "--port", String(mockPort), "--accept-unknown-keys"], env: { PATH: process.env.PATH ?? "" }, logFile: path.join(work, "mock.log"), cwd: work });
  children.push(mock);
  const mockUrl = `http://127.0.0.1:${mockPort}`;
  const barePort = await freePort();
  const bare = startChild({ name: "bare", args: [path.join(here, "bare-proxy.mjs"), "--port", String(barePort), "--upstream", mockUrl], env: { PATH: process.env.PATH ?? "" }, logFile: path.join(work, "bare.log"), cwd: work });
  children.push(bare);
  const keyportPort = await freePort();
  const databaseUrl = new URL(postgresUrl);
  databaseUrl.pathname = `/${database}`;
  const keyport = startChild({
    name: "keyport",
    args: [...keyportNodeOptions(root), path.join(root, "bin/keyport.js"), "serve"],
    env: {
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(keyportPort),
      KEYPORT_DATA_DIR: path.join(work, "data"),
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: redisUrl,
      KEYPORT_REDIS_PREFIX: prefix,
      ENCRYPTION_KEY: secrets.encryptionKey,
      KEYPORT_JWT_SECRET: secrets.jwtSecret,
      OPENAI_BASE_URL: `${mockUrl}/v1`,
      ANTHROPIC_BASE_URL: mockUrl,
      PLATFORM_OPENAI_API_KEY: `sk-proj-platform${randomBytes(24).toString("hex")}`,
      KEYPORT_TIERS: JSON.stringify({ premium: { requestsPerMinute: 10_000_000, requestsPerDay: 1_000_000_000, byokAllowed: true } }),
      KEYPORT_DEFAULT_TIER: "premium",
      LOG_LEVEL: "info",
    },
    logFile: path.join(work, "keyport.log"),
    cwd: work,
  });
  children.push(keyport);
  const origin = `http://127.0.0.1:${keyportPort}`;
  await Promise.all([waitUntilAnswering(mock, `${mockUrl}/v1/models`), waitUntilAnswering(bare, `http://127.0.0.1:${barePort}/`), waitUntilAnswering(keyport, `${origin}/healthz`)]);

  const token = (sub) =>
    new SignJWT({ tier: "premium" }).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(sub).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(secrets.jwtSecret));
  const byokToken = await token("trip-byok");
  const platformToken = await token("trip-platform");
  const api = async (method, route, bearer, body) => {
    const response = await fetch(`${origin}${route}`, { method, headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    if (response.status >= 300) throw new Error(`${method} ${route}: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
  };
  await api("POST", "/api/v1/api-keys", byokToken, { provider: "openai", apiKey: secrets.openaiKey, activate: true });
  for (const bearer of [byokToken, platformToken]) await api("PUT", "/api/v1/limits", bearer, { monthlyBudgetUsd: 1_000_000 });

  const body = JSON.stringify({ model: "gpt-4o-mini", max_tokens: 16, messages: [{ role: "user", content: "How far is it?" }] });
  const targets = [
    { name: "bare", pool: new Pool(`http://127.0.0.1:${barePort}`, { connections: 1 }), authorization: `Bearer ${secrets.openaiKey}`, source: undefined },
    { name: "keyport byok", pool: new Pool(origin, { connections: 1 }), authorization: `Bearer ${byokToken}`, source: "byok" },
    { name: "keyport platform", pool: new Pool(origin, { connections: 1 }), authorization: `Bearer ${platformToken}`, source: "platform" },
  ];
  const once = async (target) => {
    const started = process.hrtime.bigint();
    const response = await target.pool.request({ method: "POST", path: "/openai/v1/chat/completions", headers: { authorization: target.authorization, "content-type": "application/json" }, body });
    await response.body.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (response.statusCode !== 200) throw new Error(`${target.name}: HTTP ${response.statusCode}`);
    if (target.source !== undefined && response.headers["x-keyport-key-source"] !== target.source) throw new Error(`${target.name}: served by ${String(response.headers["x-keyport-key-source"])}`);
    return ms;
  };
  // Warm-up: caches, scripts, connections, JIT.
  for (let index = 0; index < 300; index += 1) for (const target of targets) await once(target);
  const times = new Map(targets.map((target) => [target.name, []]));
  for (let index = 0; index < calls; index += 1) for (const target of targets) times.get(target.name).push(await once(target));

  const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const summary = Object.fromEntries(
    [...times].map(([name, list]) => {
      const sorted = [...list].sort((a, b) => a - b);
      return [name, { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99) }];
    }),
  );
  const bare50 = summary.bare.p50;
  console.log(`Keyport from ${root}; ${calls} calls per target, one at a time, interleaved (PostgreSQL + Redis, mock latency 0 ms)`);
  for (const [name, { p50, p90, p99 }] of Object.entries(summary)) {
    const added = name === "bare" ? "" : `  added p50 vs bare ${(p50 - bare50).toFixed(3)} ms`;
    console.log(`${name.padEnd(17)} p50 ${p50.toFixed(3)} ms  p90 ${p90.toFixed(3)} ms  p99 ${p99.toFixed(3)} ms${added}`);
  }
  for (const target of targets) await target.pool.close();
} finally {
  for (const child of children.reverse()) await stopChild(child).catch(() => {});
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch((error) => console.error(`dropping ${database} failed: ${error.message}`));
  await admin.end();
  const redis = new Redis(redisUrl);
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 })) if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  rmSync(work, { recursive: true, force: true });
}
