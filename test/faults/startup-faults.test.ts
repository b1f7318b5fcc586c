import { randomBytes } from "node:crypto";
import { it as base, describe, expect } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import { type CliRunner, cleanEnv, createCliRunner, createTempDirs, requestJson, startServe, stopServe } from "../cli/cli-process.js";
import { openAiKey } from "../support/keys.js";
import { postgresTestUrl } from "../support/postgres.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

type Fixtures = { cli: CliRunner; makeDir: () => string; link: (target: string) => Promise<TcpProxy> };

const it = base.extend<Fixtures>({
  cli: async ({}, use) => {
    const runner = createCliRunner();
    await use(runner);
    await runner.killAll();
  },
  makeDir: async ({}, use) => {
    const dirs = createTempDirs("keyport-faults-");
    await use(() => dirs.make());
    dirs.removeAll();
  },
  link: async ({}, use) => {
    const proxies: TcpProxy[] = [];
    await use(async (target) => {
      const proxy = await startTcpProxy(target);
      proxies.push(proxy);
      return proxy;
    });
    await Promise.all(proxies.map((proxy) => proxy.close()));
  },
});

const NO_STACK_TRACE = /^\s+at /m;
const PASSWORD = "pw-CANARY-7f3a9c";

/** Production settings that start without development secrets (so nothing else is printed). */
function productionEnv(dataDir: string, extra: Record<string, string>): Record<string, string> {
  return cleanEnv({
    NODE_ENV: "production",
    PORT: "0",
    KEYPORT_DATA_DIR: dataDir,
    ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
    ...extra,
  });
}

/** The whole output must be one JSON log line that names the dependency and what to check. */
function theOneLogLine(stdout: string, stderr: string): Record<string, unknown> {
  const lines = `${stdout}\n${stderr}`.split("\n").filter((line) => line.trim() !== "");
  expect(lines, lines.join("\n")).toHaveLength(1);
  const output = lines.join("\n");
  expect(output).not.toMatch(NO_STACK_TRACE);
  expect(output).not.toContain(PASSWORD);
  return JSON.parse(lines[0] ?? "") as Record<string, unknown>;
}

describe("a dependency unreachable at start", { timeout: 60_000 }, () => {
  it("PostgreSQL: exits 1 with one JSON line naming it and what to check", async ({ cli, makeDir, link }) => {
    const postgres = await link(new URL(postgresTestUrl() ?? "postgres://127.0.0.1:5432/test").host);
    postgres.cut();
    const url = `postgres://keyport:${PASSWORD}@${postgres.address}/keyport`;
    const result = await cli.run(["serve"], { env: productionEnv(makeDir(), { DATABASE_URL: url }), cwd: makeDir() });
    expect(result.code, result.stderr).toBe(1);
    const line = theOneLogLine(result.stdout, result.stderr);
    expect(line).toMatchObject({ level: 60, service: "keyport", dependency: "database", msg: "Keyport cannot start: PostgreSQL is not reachable" });
    expect(line.check).toContain(`DATABASE_URL (postgres://${postgres.address}/keyport)`);
    expect(typeof line.reason).toBe("string");
  });
});

await describeRedis("Redis unreachable at start", (redisUrl) => {
  it("with KEYPORT_RATE_LIMIT_ON_ERROR=closed: exits 1 with one JSON line naming it and what to check", { timeout: 60_000 }, async ({ cli, makeDir, link }) => {
    const redis = await link(new URL(redisUrl).host);
    redis.cut();
    const env = productionEnv(makeDir(), { REDIS_URL: `redis://:${PASSWORD}@${redis.address}`, KEYPORT_RATE_LIMIT_ON_ERROR: "closed" });
    const result = await cli.run(["serve"], { env, cwd: makeDir() });
    expect(result.code, result.stderr).toBe(1);
    const line = theOneLogLine(result.stdout, result.stderr);
    expect(line).toMatchObject({ level: 60, dependency: "redis", msg: "Keyport cannot start: Redis is not reachable" });
    expect(line.check).toContain(`REDIS_URL (redis://${redis.address})`);
  });

  it("with the open policy: starts degraded, refuses key changes, and picks Redis up when it answers", { timeout: 90_000 }, async ({ cli, makeDir, link }) => {
    const mock = await startMockProvider({ acceptUnknownKeys: false });
    const prefix = uniqueTestPrefix("startup");
    try {
      const redis = await link(new URL(redisUrl).host);
      redis.cut();
      const jwtSecret = randomBytes(48).toString("base64url");
      const env = cleanEnv({
        PORT: "0",
        REDIS_URL: redis.urlFor(redisUrl),
        KEYPORT_REDIS_PREFIX: prefix,
        KEYPORT_JWT_SECRET: jwtSecret,
        OPENAI_BASE_URL: mock.openaiBaseUrl,
        ANTHROPIC_BASE_URL: mock.anthropicBaseUrl,
      });
      const server = await startServe(cli, env, makeDir());
      const warning = server.process
        .stdout()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.dependency === "redis");
      expect(warning).toHaveLength(1);
      expect(warning[0]).toMatchObject({ level: 40, dependency: "redis" });
      expect(server.process.stdout() + server.process.stderr()).not.toMatch(NO_STACK_TRACE);

      const degraded = await requestJson("GET", `${server.url}/readyz`);
      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({ status: "degraded", ready: true, checks: { redis: "unreachable" } });

      const token = await signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub: "startup", tier: "premium" });
      const apiKey = openAiKey();
      mock.setKey(apiKey, "valid");
      const refused = await requestJson("POST", `${server.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey } });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe("unavailable");

      redis.restore();
      const deadline = Date.now() + 20_000;
      let ready = await requestJson("GET", `${server.url}/readyz`);
      while (ready.body.status !== "ready" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        ready = await requestJson("GET", `${server.url}/readyz`);
      }
      expect(ready.body).toMatchObject({ status: "ready", degraded: [] });
      const created = await requestJson("POST", `${server.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);

      const result = await stopServe(server);
      expect(result.code, result.stderr).toBe(0);
    } finally {
      await mock.close();
      const admin = await openTestRedis(redisUrl);
      await deleteTestKeys(admin, prefix);
      await admin.quit();
    }
  });
});
