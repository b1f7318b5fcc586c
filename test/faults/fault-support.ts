import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import pg from "pg";
import { expect, vi } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { startKeyport, type TestKeyport, type TestResponse } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, dropTestSchema } from "../support/postgres.js";
import { deleteTestKeys, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { inferenceCalls, openAiThrough, upstreamKeyOf } from "../gateway/gateway-clients.js";

/** One Keyport instance whose links to PostgreSQL and to Redis each run through a proxy the test controls. */
export type FaultyInstance = TestKeyport & { name: string; postgresLink: TcpProxy; redisLink: TcpProxy };

/**
 * Instances of one deployment (one PostgreSQL schema, one Redis prefix), each behind its own pair
 * of proxies, so a fault can hit one instance's link while the others keep theirs.
 */
export type FaultyDeployment = {
  mock: MockProvider;
  platformOpenAiKey: string;
  schema: string;
  redisPrefix: string;
  /** A direct connection for looking at what is stored in Redis. */
  redis: Redis;
  postgresUrl: string;
  instances: FaultyInstance[];
  /** Starts one more instance of this deployment (its own proxies), e.g. with another policy. */
  addInstance(name: string, env?: Record<string, string>): Promise<FaultyInstance>;
  close(): Promise<void>;
};

export async function startFaultyDeployment(options: {
  postgresUrl: string;
  redisUrl: string;
  names: string[];
  env?: Record<string, string>;
}): Promise<FaultyDeployment> {
  const platformOpenAiKey = openAiKey();
  const mock = await startMockProvider({ keys: { [platformOpenAiKey]: "valid" } });
  const schema = createTestSchemaName();
  const redisPrefix = uniqueTestPrefix("faults");
  const redis = await openTestRedis(options.redisUrl, "keyport-test-faults-admin");
  const shared = {
    ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
    PLATFORM_OPENAI_API_KEY: platformOpenAiKey,
    KEYPORT_UPSTREAM_RETRIES: "0",
    ...options.env,
  };
  const instances: FaultyInstance[] = [];
  const proxies: TcpProxy[] = [];

  async function addInstance(name: string, env: Record<string, string> = {}): Promise<FaultyInstance> {
    const postgresLink = await startTcpProxy(new URL(options.postgresUrl).host);
    const redisLink = await startTcpProxy(new URL(options.redisUrl).host);
    proxies.push(postgresLink, redisLink);
    const keyport = await startKeyport({
      dialect: "postgres",
      postgresSchema: schema,
      redisPrefix,
      mock,
      env: { ...shared, DATABASE_URL: postgresLink.urlFor(options.postgresUrl), REDIS_URL: redisLink.urlFor(options.redisUrl), ...env },
    });
    const instance = Object.assign(keyport, { name, postgresLink, redisLink });
    instances.push(instance);
    return instance;
  }

  try {
    // One after the other: the first migrates the fresh schema.
    for (const name of options.names) await addInstance(name);
  } catch (error) {
    await Promise.allSettled(instances.map((instance) => instance.close()));
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    throw error;
  }

  return {
    mock,
    platformOpenAiKey,
    schema,
    redisPrefix,
    redis,
    postgresUrl: options.postgresUrl,
    instances,
    addInstance,
    async close() {
      for (const proxy of proxies) {
        proxy.restore();
        proxy.resume();
      }
      await Promise.allSettled(instances.map((instance) => instance.close()));
      await Promise.allSettled(proxies.map((proxy) => proxy.close()));
      await mock.close();
      await dropTestSchema(options.postgresUrl, schema);
      await deleteTestKeys(redis, redisPrefix);
      await redis.quit();
    },
  };
}

/** `/readyz` of an instance. */
export async function readiness(instance: TestKeyport): Promise<TestResponse> {
  return instance.request("GET", "/readyz");
}

/** Names of the degradations `/readyz` lists. */
export function degradationsOf(response: TestResponse): string[] {
  return ((response.body?.degraded ?? []) as { name: string }[]).map((item) => item.name);
}

/** Waits until `/readyz` of `instance` satisfies `check` (dependency states change asynchronously). */
export async function waitForReadiness(instance: TestKeyport, check: (response: TestResponse) => void, timeoutMs = 15_000): Promise<TestResponse> {
  let last: TestResponse | undefined;
  await vi.waitFor(
    async () => {
      last = await readiness(instance);
      check(last);
    },
    { timeout: timeoutMs, interval: 100 },
  );
  if (last === undefined) throw new Error("no readiness answer");
  return last;
}

/** Stores an OpenAI key for the token's owner through `instance` and returns its id. */
export async function storeOpenAiKey(instance: TestKeyport, token: string, mock: MockProvider): Promise<{ id: string; apiKey: string }> {
  const apiKey = openAiKey();
  mock.setKey(apiKey, "valid");
  const created = await instance.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey } });
  expect(created.status, created.text).toBe(201);
  expect(created.body.isActive).toBe(true);
  return { id: created.body.id as string, apiKey };
}

/** One chat completion through `instance`; resolves with the key source header. */
export async function chat(instance: TestKeyport, token: string, text = "hello"): Promise<string | null> {
  const { data, response } = await openAiThrough(instance.url, token)
    .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: text }] })
    .withResponse();
  expect(data.choices[0]?.message.content).toBe(`Mock reply: ${text}`);
  return response.headers.get("x-keyport-key-source");
}

/** The keys the mock saw on inference calls from position `since` on. */
export function keysSeenSince(mock: MockProvider, since: number): (string | undefined)[] {
  return inferenceCalls(mock, since).map(upstreamKeyOf);
}

/** The owner's audit event types, newest first, read straight from the database. */
export async function auditTypesOf(postgresUrl: string, schema: string, owner: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const result = await client.query<{ type: string }>(`select type from "${schema}".audit_events where owner = $1 order by id desc`, [owner]);
    return result.rows.map((row) => row.type);
  } finally {
    await client.end();
  }
}
