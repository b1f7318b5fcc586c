import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { cleanEnv, createCliRunner, createTempDirs, requestJson } from "../cli/cli-process.js";
import { waitUntil } from "../gateway/gateway-clients.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { chatBody, worstCaseOf } from "./budget-support.js";

const IN_FLIGHT = 3;

/**
 * Keyport as a real process (`keyport serve`, the build in dist/) on SQLite, SIGKILLed while
 * three calls hold reservations that together use up an owner's budget, then started again on
 * the same database: the reservations still count at their reserved amount, so the next call is
 * refused before it reaches the provider (no call slips through on a lost reservation).
 */
function killWithCallsInFlight(name: string, extraEnv: () => Record<string, string>): void {
    describe(name, () => {
    const runner = createCliRunner();
    const directories = createTempDirs("keyport-budget-kill-");
    let mock: MockProvider;

    beforeAll(async () => {
      mock = await startMockProvider({ acceptUnknownKeys: true });
    });
    afterEach(async () => {
      await runner.killAll();
    });
    afterAll(async () => {
      await mock.close();
      directories.removeAll();
    });

    it("calls in flight at the kill keep the budget spent after the restart", { timeout: 180_000 }, async () => {
      const dataDir = directories.make();
      const jwtSecret = randomBytes(48).toString("base64url");
      const env = cleanEnv({
        NODE_ENV: "test",
        PORT: "0",
        KEYPORT_DATA_DIR: dataDir,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        KEYPORT_JWT_SECRET: jwtSecret,
        OPENAI_BASE_URL: mock.openaiBaseUrl,
        KEYPORT_UPSTREAM_RETRIES: "0",
        LOG_LEVEL: "info",
        ...extraEnv(),
      });
      const start = async () => {
        const keyport = runner.start(["serve"], { cwd: dataDir, env });
        const [, url] = await keyport.waitFor(/Keyport is running at (http:\/\/[^\s]+)/);
        if (url === undefined) throw new Error("no address in the banner");
        return { keyport, url };
      };
      const sub = `kill-${randomBytes(4).toString("hex")}`;
      const token = await signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub, tier: "premium" });
      const apiKey = openAiKey();
      const body = chatBody(sub);
      const worst = worstCaseOf(body);
      // Room for three worst cases and not a fourth, in whole micro-USD.
      const budgetNano = Math.ceil((IN_FLIGHT * worst) / 1000) * 1000;
      const chat = (url: string) =>
        fetch(`${url}/openai/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });

      const first = await start();
      const created = await requestJson("POST", `${first.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const saved = await requestJson("PUT", `${first.url}/api/v1/limits`, { token, body: { monthlyBudgetUsd: budgetNano / 1e9 } });
      expect(saved.status, JSON.stringify(saved.body)).toBe(200);

      // Three calls reach the provider and wait there; Keyport dies before any of them settles.
      mock.injectFault({ kind: "delay", ms: 600_000, times: IN_FLIGHT, match: { path: "/v1/chat/completions", key: apiKey } });
      const inFlight = Array.from({ length: IN_FLIGHT }, () => chat(first.url).catch((error: unknown) => error));
      const reachedProvider = () => mock.requests().filter((request) => request.path === "/v1/chat/completions" && JSON.stringify(request.body ?? "").includes(sub));
      await waitUntil(() => reachedProvider().length === IN_FLIGHT, "the calls reached the provider", 60_000);
      await first.keyport.kill();
      await Promise.all(inFlight);

      const second = await start();
      const refused = await chat(second.url);
      const refusal = (await refused.json()) as { error: { code: string; message: string } };
      expect(refused.status).toBe(429);
      expect(refusal.error.code).toBe("budget_exceeded");
      expect(refusal.error.message).toMatch(/Your monthly budget would be exceeded/);
      expect(reachedProvider()).toHaveLength(IN_FLIGHT);

      // The reservations are what the month has spent: counted at their reserved amount.
      const limits = await requestJson("GET", `${second.url}/api/v1/limits`, { token });
      expect(limits.status).toBe(200);
      expect(Math.round(limits.body.spentUsd * 1e9)).toBe(IN_FLIGHT * worst);
      await second.keyport.kill();
    });
  });
}

killWithCallsInFlight("budget reservations across a SIGKILL on SQLite", () => ({}));

/** The URL with the schema first on the `search_path` of every connection (libpq `options`). */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("options", `-c search_path=${schema}`);
  return parsed.toString();
}

async function createSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`create schema "${schema}"`);
  } finally {
    await client.end();
  }
}

await describePostgres("on PostgreSQL", (postgresUrl) => {
  const schema = createTestSchemaName();
  beforeAll(async () => createSchema(postgresUrl, schema));
  afterAll(async () => dropTestSchema(postgresUrl, schema));
  killWithCallsInFlight("budget reservations across a SIGKILL, the database ledger", () => ({ DATABASE_URL: withSearchPath(postgresUrl, schema) }));
});

await describeRedis("on PostgreSQL and Redis", async (redisUrl) => {
  await describePostgres("the Redis ledger", (postgresUrl) => {
    const schema = createTestSchemaName();
    const prefix = uniqueTestPrefix("budget-kill");
    beforeAll(async () => createSchema(postgresUrl, schema));
    afterAll(async () => {
      await dropTestSchema(postgresUrl, schema);
      const redis = await openTestRedis(redisUrl);
      await deleteTestKeys(redis, prefix);
      await redis.quit();
    });
    killWithCallsInFlight("budget reservations across a SIGKILL, the Redis ledger", () => ({
      DATABASE_URL: withSearchPath(postgresUrl, schema),
      REDIS_URL: redisUrl,
      KEYPORT_REDIS_PREFIX: prefix,
    }));
  });
});
