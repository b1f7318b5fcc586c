import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import type { Redis } from "ioredis";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { startKeyport, type StartOptions, type TestKeyport } from "../support/harness.js";
import { anthropicKey, openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { deleteTestKeys, describeRedis, openTestRedis, uniqueTestPrefix } from "../support/redis.js";
import { anthropicThrough, inferenceCalls, openAiThrough, upstreamKeyOf } from "./gateway-clients.js";

/**
 * Two Keyport instances on one PostgreSQL schema and one Redis prefix act as one deployment:
 * the platform rate limit is shared, a key change made through one instance is honoured by the
 * other on its very next call (no waiting for a cache to expire), and both write usage to the
 * one database.
 */
await describeRedis("gateway scale-out", async (redisUrl) => {
  await describePostgres("two instances, one PostgreSQL schema, one Redis", (postgresUrl) => {
    const schema = createTestSchemaName();
    const redisPrefix = uniqueTestPrefix("gw-scale");
    const platformOpenAiKey = openAiKey();
    let mock: MockProvider;
    let redis: Redis;
    let instanceA: TestKeyport;
    let instanceB: TestKeyport;
    /** x-request-id of every call that reached the provider, by owner and instance. */
    const upstreamCalls: { owner: string; instance: "A" | "B"; requestId: string }[] = [];

    beforeAll(async () => {
      mock = await startMockProvider({ keys: { [platformOpenAiKey]: "valid" } });
      redis = await openTestRedis(redisUrl);
      const options: StartOptions = {
        dialect: "postgres",
        postgresSchema: schema,
        redisPrefix,
        mock,
        env: {
          REDIS_URL: redisUrl,
          ENCRYPTION_KEY: randomBytes(32).toString("hex"),
          KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
          PLATFORM_OPENAI_API_KEY: platformOpenAiKey,
          // No Anthropic platform key: a call without an own key must end in 403.
          KEYPORT_UPSTREAM_RETRIES: "0",
        },
      };
      // Both start at once on an empty schema, as a fresh deployment would (migrations and the
      // master-key verifier must cope with that).
      const started = await Promise.allSettled([startKeyport(options), startKeyport(options)]);
      const failure = started.find((outcome) => outcome.status === "rejected");
      const running = started.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
      if (failure !== undefined) {
        await Promise.allSettled(running.map((instance) => instance.close()));
        throw failure.reason;
      }
      [instanceA, instanceB] = running as [TestKeyport, TestKeyport];
    });

    afterAll(async () => {
      await Promise.allSettled([instanceA?.close(), instanceB?.close()]);
      await mock?.close();
      await dropTestSchema(postgresUrl, schema);
      if (redis !== undefined) {
        await deleteTestKeys(redis, redisPrefix);
        await redis.quit();
      }
    });

    const label = (instance: TestKeyport): "A" | "B" => (instance === instanceA ? "A" : "B");

    /** One chat completion through `instance` with the OpenAI SDK; remembers it for the usage check. */
    async function chat(instance: TestKeyport, token: string, owner: string, text: string) {
      const { data, response } = await openAiThrough(instance.url, token)
        .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: text }] })
        .withResponse();
      const requestId = response.headers.get("x-request-id") ?? "";
      upstreamCalls.push({ owner, instance: label(instance), requestId });
      expect(data.choices[0]?.message.content).toBe(`Mock reply: ${text}`);
      return { headers: response.headers, source: response.headers.get("x-keyport-key-source") };
    }

    /** Stores a key through A (the first of a provider becomes active, later ones do not). */
    async function createKey(token: string, provider: "openai" | "anthropic", apiKey: string) {
      mock.setKey(apiKey, "valid");
      const created = await instanceA.request("POST", "/api/v1/api-keys", { token, body: { provider, apiKey } });
      expect(created.status, created.text).toBe(201);
      return created.body as { id: string; isActive: boolean };
    }

    /** The keys the mock saw on inference calls from position `since` on. */
    const keysSeenSince = (since: number) => inferenceCalls(mock, since).map(upstreamKeyOf);

    it("holds the community limit (10/min) across both instances together", async () => {
      await waitForRoomInMinute(redis, 20);
      const owner = "user:scale-community";
      const token = await instanceA.token("scale-community", { tier: "community" });
      const mark = mock.requests().length;

      const remaining: string[] = [];
      for (let index = 0; index < 10; index += 1) {
        const instance = index % 2 === 0 ? instanceA : instanceB;
        const { headers, source } = await chat(instance, token, owner, `community call ${index}`);
        expect(source).toBe("platform");
        expect(headers.get("ratelimit-limit")).toBe("10");
        remaining.push(headers.get("ratelimit-remaining") ?? "missing");
      }
      expect(remaining).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);

      // The 11th call is refused whichever instance takes it.
      for (const instance of [instanceB, instanceA]) {
        const error = await openAiThrough(instance.url, token)
          .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "one too many" }] })
          .then(
            () => undefined,
            (thrown: unknown) => thrown,
          );
        expect(error, `instance ${label(instance)}`).toBeInstanceOf(OpenAI.RateLimitError);
        const headers = (error as InstanceType<typeof OpenAI.RateLimitError>).headers;
        expect(headers.get("ratelimit-limit")).toBe("10");
        expect(headers.get("ratelimit-remaining")).toBe("0");
        const retryAfter = Number(headers.get("retry-after"));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(Number(headers.get("ratelimit-reset"))).toBe(retryAfter);
      }

      const calls = inferenceCalls(mock, mark);
      expect(calls).toHaveLength(10);
      expect(calls.every((call) => upstreamKeyOf(call) === platformOpenAiKey)).toBe(true);
    });

    it("never uses a key deleted through A on B's very next call (platform fallback)", async () => {
      const owner = "user:scale-delete";
      const token = await instanceA.token("scale-delete", { tier: "premium" });
      const deletions: { apiKey: string; mark: number }[] = [];
      // A few rounds: each one creates, warms B's cache with the key, deletes through A.
      for (let round = 0; round < 3; round += 1) {
        const apiKey = openAiKey();
        const key = await createKey(token, "openai", apiKey);
        expect(key.isActive).toBe(true);
        for (const attempt of [1, 2]) {
          const mark = mock.requests().length;
          expect((await chat(instanceB, token, owner, `byok round ${round} attempt ${attempt}`)).source).toBe("byok");
          expect(keysSeenSince(mark)).toEqual([apiKey]);
        }

        const mark = mock.requests().length;
        const removal = await instanceA.request("DELETE", `/api/v1/api-keys/${key.id}`, { token });
        expect(removal.status, removal.text).toBe(204);
        deletions.push({ apiKey, mark });
        // No pause: B must not serve from what it cached before the delete.
        expect((await chat(instanceB, token, owner, `after delete ${round}`)).source).toBe("platform");
        expect((await chat(instanceA, token, owner, `after delete on A ${round}`)).source).toBe("platform");
        expect(keysSeenSince(mark)).toEqual([platformOpenAiKey, platformOpenAiKey]);
      }
      for (const { apiKey, mark } of deletions) expect(keysSeenSince(mark)).not.toContain(apiKey);
    });

    it("never uses a key deleted through A on B's very next call (no platform key: 403)", async () => {
      const token = await instanceA.token("scale-delete-anthropic", { tier: "premium" });
      const apiKey = anthropicKey();
      const key = await createKey(token, "anthropic", apiKey);
      const anthropic = anthropicThrough(instanceB.url, token);
      const request = { model: "claude-haiku-4-5", max_tokens: 64, messages: [{ role: "user" as const, content: "hello from B" }] };

      let mark = mock.requests().length;
      const { data, response } = await anthropic.messages.create(request).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      expect(data.content[0]?.type === "text" ? data.content[0].text : undefined).toBe("Mock reply: hello from B");
      upstreamCalls.push({ owner: "user:scale-delete-anthropic", instance: "B", requestId: response.headers.get("x-request-id") ?? "" });
      expect(keysSeenSince(mark)).toEqual([apiKey]);

      mark = mock.requests().length;
      expect((await instanceA.request("DELETE", `/api/v1/api-keys/${key.id}`, { token })).status).toBe(204);
      const error = await anthropic.messages.create(request).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
      expect(JSON.stringify((error as InstanceType<typeof Anthropic.PermissionDeniedError>).error)).toContain("No API key available");
      expect(mock.requests().slice(mark)).toEqual([]);
    });

    it("stops using a key deactivated through A on B's very next call", async () => {
      const owner = "user:scale-deactivate";
      const token = await instanceA.token("scale-deactivate", { tier: "premium" });
      const apiKey = openAiKey();
      const key = await createKey(token, "openai", apiKey);
      let mark = mock.requests().length;
      expect((await chat(instanceB, token, owner, "before deactivation")).source).toBe("byok");
      expect((await chat(instanceB, token, owner, "before deactivation again")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([apiKey, apiKey]);

      mark = mock.requests().length;
      const patched = await instanceA.request("PATCH", `/api/v1/api-keys/${key.id}`, { token, body: { isActive: false } });
      expect(patched.status, patched.text).toBe(200);
      expect(patched.body.isActive).toBe(false);
      expect((await chat(instanceB, token, owner, "after deactivation")).source).toBe("platform");
      expect((await chat(instanceB, token, owner, "after deactivation again")).source).toBe("platform");
      expect(keysSeenSince(mark)).toEqual([platformOpenAiKey, platformOpenAiKey]);

      // And back: reactivated through A, used by B at once.
      mark = mock.requests().length;
      expect((await instanceA.request("PATCH", `/api/v1/api-keys/${key.id}`, { token, body: { isActive: true } })).status).toBe(200);
      expect((await chat(instanceB, token, owner, "after reactivation")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([apiKey]);
    });

    it("uses a second key activated through A on B's very next call", async () => {
      const owner = "user:scale-activate";
      const token = await instanceA.token("scale-activate", { tier: "premium" });
      const firstKey = openAiKey();
      const secondKey = openAiKey();
      const first = await createKey(token, "openai", firstKey);
      const second = await createKey(token, "openai", secondKey);
      expect(first.isActive).toBe(true);
      expect(second.isActive).toBe(false);

      let mark = mock.requests().length;
      expect((await chat(instanceB, token, owner, "first key")).source).toBe("byok");
      expect((await chat(instanceB, token, owner, "first key again")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([firstKey, firstKey]);

      for (const [next, nextKey] of [
        [second, secondKey],
        [first, firstKey],
        [second, secondKey],
      ] as const) {
        mark = mock.requests().length;
        const activated = await instanceA.request("PATCH", `/api/v1/api-keys/${next.id}`, { token, body: { isActive: true } });
        expect(activated.status, activated.text).toBe(200);
        expect((await chat(instanceB, token, owner, "switched key")).source).toBe("byok");
        expect((await chat(instanceB, token, owner, "switched key again")).source).toBe("byok");
        expect(keysSeenSince(mark)).toEqual([nextKey, nextKey]);
      }
    });

    it("uses a secret replaced through A on B's very next call", async () => {
      const owner = "user:scale-rotate";
      const token = await instanceA.token("scale-rotate", { tier: "premium" });
      const oldSecret = openAiKey();
      const key = await createKey(token, "openai", oldSecret);
      let mark = mock.requests().length;
      expect((await chat(instanceB, token, owner, "old secret")).source).toBe("byok");
      expect((await chat(instanceB, token, owner, "old secret again")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([oldSecret, oldSecret]);

      const newSecret = openAiKey();
      mock.setKey(newSecret, "valid");
      const replaced = await instanceA.request("PUT", `/api/v1/api-keys/${key.id}/secret`, { token, body: { apiKey: newSecret } });
      expect(replaced.status, replaced.text).toBe(200);
      // Marked after the replacement: its live validation sends a completion of its own.
      mark = mock.requests().length;
      expect((await chat(instanceB, token, owner, "new secret")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([newSecret]);
    });

    it("does not retry on A a key the provider revoked during a call on B", async () => {
      const owner = "user:scale-revoked";
      const token = await instanceA.token("scale-revoked", { tier: "premium" });
      const apiKey = openAiKey();
      await createKey(token, "openai", apiKey);
      let mark = mock.requests().length;
      expect((await chat(instanceA, token, owner, "warm A")).source).toBe("byok");
      expect((await chat(instanceA, token, owner, "warm A again")).source).toBe("byok");
      expect(keysSeenSince(mark)).toEqual([apiKey, apiKey]);

      mock.setKey(apiKey, "invalid");
      mark = mock.requests().length;
      // B tries the key, the provider refuses it, B marks it invalid and falls back.
      expect((await chat(instanceB, token, owner, "revoked on B")).source).toBe("platform");
      expect(keysSeenSince(mark)).toEqual([apiKey, platformOpenAiKey]);
      mark = mock.requests().length;
      expect((await chat(instanceA, token, owner, "next on A")).source).toBe("platform");
      expect(keysSeenSince(mark)).toEqual([platformOpenAiKey]);
    });

    it("writes the usage records of both instances to the one database", async () => {
      const owner = "user:scale-usage";
      const token = await instanceA.token("scale-usage", { tier: "premium" });
      for (let index = 0; index < 6; index += 1) {
        await chat(index % 2 === 0 ? instanceA : instanceB, token, owner, `usage call ${index}`);
      }
      // Closing flushes each instance's queued records (a graceful stop writes every record).
      await Promise.all([instanceA.close(), instanceB.close()]);

      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      let rows: { owner: string; request_id: string; status: string }[];
      try {
        rows = (await client.query<{ owner: string; request_id: string; status: string }>(`select owner, request_id, status from "${schema}".usage_records`)).rows;
      } finally {
        await client.end();
      }

      const usageOwnerRows = rows.filter((row) => row.owner === owner);
      expect(usageOwnerRows).toHaveLength(6);
      // Every call of this file that reached the provider, from either instance, and nothing else.
      expect(rows.map((row) => row.request_id).sort()).toEqual(upstreamCalls.map((call) => call.requestId).sort());
      expect(rows.every((row) => row.status === "ok")).toBe(true);
      expect(new Set(upstreamCalls.map((call) => call.instance))).toEqual(new Set(["A", "B"]));
      const communityRows = rows.filter((row) => row.owner === "user:scale-community");
      expect(communityRows).toHaveLength(10);
    });
  });
});

/**
 * Rate-limit windows are whole minutes of the Redis server's clock. A burst that straddles a
 * minute boundary would see a fresh window halfway, so start it early in a minute.
 */
async function waitForRoomInMinute(redis: Redis, neededSeconds: number): Promise<void> {
  const [seconds] = await redis.time();
  const left = 60 - (Number(seconds) % 60);
  if (left < neededSeconds) await sleep(left * 1000 + 100);
}
