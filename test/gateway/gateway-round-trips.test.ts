import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { chat, eventually, putLimits } from "../budgets/budget-support.js";
import { type FaultyDeployment, type FaultyInstance, startFaultyDeployment } from "../faults/fault-support.js";
import type { TestKeyport, TestResponse } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";
import { describeRedis, openTestRedis } from "../support/redis.js";
import { holdKeyChangeMessages, watchRoundTrips } from "../support/round-trips.js";
import { inferenceCalls, upstreamKeyOf, waitUntil } from "./gateway-clients.js";

/**
 * On PostgreSQL + Redis a gateway call makes at most one Redis round trip and no database query
 * before it goes upstream (warm caches): the key cache's version read, the tier's rate limit and
 * the budget reservation travel together. The owner's cached key is used for the limit and the
 * reservation before its version is confirmed; when another instance changed the key meanwhile,
 * the call is never served with the old one and what was reserved for it is given back.
 */
await describeRedis("gateway round trips", async (redisUrl) => {
  describe("the round-trip count itself", () => {
    it("counts commands sent before any answer as one round trip, and a command sent after an answer as another", async () => {
      const watcher = watchRoundTrips("keyport-trip-check");
      const redis = await openTestRedis(redisUrl, "keyport-trip-check");
      try {
        watcher.start();
        await Promise.all([redis.get("keyport:test:trip-check:a"), redis.get("keyport:test:trip-check:b")]);
        expect(watcher.stop().roundTrips).toBe(1);
        watcher.start();
        await redis.get("keyport:test:trip-check:a");
        await redis.get("keyport:test:trip-check:b");
        expect(watcher.stop().roundTrips).toBe(2);
      } finally {
        watcher.restore();
        await redis.quit();
      }
    });
  });

  await describePostgres("two instances, one PostgreSQL schema, one Redis", (postgresUrl) => {
    let deployment: FaultyDeployment;
    let mock: MockProvider;
    let redis: Redis;
    let platformOpenAiKey: string;
    let database: pg.Client;
    let instanceA: TestKeyport;
    let instanceB: TestKeyport;
    let watcher: ReturnType<typeof watchRoundTrips>;

    beforeAll(async () => {
      deployment = await startFaultyDeployment({
        postgresUrl,
        redisUrl,
        names: ["A", "B"],
        env: {
          // The outbox is polled in the background: rarely here, so a query of a call stands out.
          KEYPORT_NOTIFICATION_POLL_MS: "60000",
          // `trial`: own keys allowed, one platform call a day.
          KEYPORT_TIERS: JSON.stringify({
            community: { requestsPerMinute: 10, requestsPerDay: 100, byokAllowed: false },
            premium: { requestsPerMinute: 100, requestsPerDay: 2000, byokAllowed: true },
            trial: { requestsPerMinute: 1, requestsPerDay: 1, byokAllowed: true },
          }),
        },
      });
      ({ mock, redis, platformOpenAiKey } = deployment);
      [instanceA, instanceB] = deployment.instances as [FaultyInstance, FaultyInstance];
      database = new pg.Client({ connectionString: postgresUrl });
      await database.connect();
      watcher = watchRoundTrips();
    });

    afterAll(async () => {
      watcher?.restore();
      await database?.end();
      await deployment?.close();
    });

    /** Stores and activates an OpenAI key through A. */
    async function createKey(token: string, apiKey: string): Promise<string> {
      mock.setKey(apiKey, "valid");
      const created = await instanceA.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey } });
      expect(created.status, created.text).toBe(201);
      return created.body.id as string;
    }

    function body(text: string): string {
      return JSON.stringify({ model: "gpt-4o-mini", max_tokens: 50, messages: [{ role: "user", content: text }] });
    }

    /** Calls through `instance` until its caches, counters and scripts are warm. */
    async function warm(instance: TestKeyport, token: string, source: "byok" | "platform"): Promise<void> {
      for (const attempt of [1, 2]) {
        const response = await chat(instance, token, body(`warm-up ${attempt}`));
        expect(response.status, response.text).toBe(200);
        expect(response.headers.get("x-keyport-key-source")).toBe(source);
      }
    }

    /**
     * One call through `instance`, watching Redis and PostgreSQL from its arrival until it reaches
     * the provider (held there a moment, so nothing after forwarding is counted).
     */
    async function watchedChat(instance: TestKeyport, token: string, text: string) {
      // Earlier calls' settlements (every 200 ms) and usage batches are written by now.
      await sleep(500);
      mock.injectFault({ kind: "delay", ms: 300, match: { path: "/v1/chat/completions" } });
      const mark = mock.requests().length;
      watcher.start();
      const answer = chat(instance, token, body(text));
      try {
        await waitUntil(() => mock.requests().length > mark, "the call reached the provider");
      } finally {
        // A call that never gets there (a refusal) is counted to its answer.
        if (mock.requests().length <= mark) await answer;
      }
      const seen = watcher.stop();
      const response: TestResponse = await answer;
      expect(response.status, response.text).toBe(200);
      const upstreamKeys = inferenceCalls(mock, mark).map(upstreamKeyOf);
      return { seen, source: response.headers.get("x-keyport-key-source"), upstreamKeys };
    }

    /**
     * Makes `change` through A while its announcement is still on its way to B (only the version
     * in Redis says the owner's keys changed), then watches B's next call.
     */
    async function callBeforeBHears(token: string, text: string, change: () => Promise<void>) {
      const messages = holdKeyChangeMessages();
      try {
        await change();
        expect(messages.count()).toBeGreaterThan(0);
        return await watchedChat(instanceB, token, text);
      } finally {
        messages.release();
      }
    }

    const month = () => new Date().toISOString().slice(0, 7);

    /** The owner's budget counters in Redis, once every settlement has been applied. */
    async function countersOf(owner: string): Promise<Record<string, string>> {
      return redis.hgetall(`${deployment.redisPrefix}bud:{${owner}}:${month()}`);
    }

    /** What the owner's recorded calls cost, in all and per key. */
    async function recordedCostOf(owner: string): Promise<{ total: number; byKey: Record<string, number> }> {
      const { rows } = await database.query<{ key_id: string | null; cost: string }>(
        `SELECT key_id, SUM(cost_nano_usd)::text AS cost FROM "${deployment.schema}".usage_records WHERE owner = $1 GROUP BY key_id`,
        [owner],
      );
      const byKey = Object.fromEntries(rows.filter((row) => row.key_id !== null).map((row) => [row.key_id, Number(row.cost)]));
      return { total: rows.reduce((sum, row) => sum + Number(row.cost), 0), byKey };
    }

    async function recordCount(owner: string): Promise<number> {
      const { rows } = await database.query<{ count: string }>(`SELECT COUNT(*)::text AS count FROM "${deployment.schema}".usage_records WHERE owner = $1`, [owner]);
      return Number(rows[0]?.count ?? 0);
    }

    it("a call on the owner's own key, with a budget: one Redis round trip (version read and reservation), no database query", async () => {
      const token = await instanceA.token("trip-byok", { tier: "premium" });
      const apiKey = openAiKey();
      await createKey(token, apiKey);
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "byok");

      const { seen, source, upstreamKeys } = await watchedChat(instanceB, token, "own key");
      expect(source).toBe("byok");
      expect(upstreamKeys).toEqual([apiKey]);
      expect(seen.redisCommands.map((command) => command.name)).toEqual(["get", "script"]);
      expect(seen.roundTrips).toBe(1);
      expect(seen.sqlQueries, seen.sqlQueries.join("\n")).toEqual([]);
    });

    it("a platform call on a plan that allows own keys, the owner having none: one round trip (version read, rate limit, reservation)", async () => {
      const token = await instanceA.token("trip-no-own-key", { tier: "premium" });
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "platform");

      const { seen, source, upstreamKeys } = await watchedChat(instanceB, token, "no own key");
      expect(source).toBe("platform");
      expect(upstreamKeys).toEqual([platformOpenAiKey]);
      expect(seen.redisCommands.map((command) => command.name)).toEqual(["get", "script", "script"]);
      expect(seen.roundTrips).toBe(1);
      expect(seen.sqlQueries, seen.sqlQueries.join("\n")).toEqual([]);
    });

    it("a platform call on a plan without own keys: one round trip (rate limit, reservation), no version read", async () => {
      const token = await instanceA.token("trip-community", { tier: "community" });
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "platform");

      const { seen, source } = await watchedChat(instanceB, token, "community");
      expect(source).toBe("platform");
      expect(seen.redisCommands.map((command) => command.name)).toEqual(["script", "script"]);
      expect(seen.roundTrips).toBe(1);
      expect(seen.sqlQueries, seen.sqlQueries.join("\n")).toEqual([]);
    });

    it("never serves B's next call with a key deleted through A before B heard of it, and gives back what B reserved for it", async () => {
      const owner = "user:trip-delete";
      const token = await instanceA.token("trip-delete", { tier: "premium" });
      const apiKey = openAiKey();
      const id = await createKey(token, apiKey);
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "byok");

      const watched = await callBeforeBHears(token, "after delete", async () => {
        const removal = await instanceA.request("DELETE", `/api/v1/api-keys/${id}`, { token });
        expect(removal.status, removal.text).toBe(204);
      });

      expect(watched.source).toBe("platform");
      expect(watched.upstreamKeys).toEqual([platformOpenAiKey]);
      // B did start on its cached key: the reservation for it went with the version read, and
      // the limit and reservation for the platform key followed once the version said otherwise.
      const [guessed, retaken] = splitByTrip(watched.seen.redisCommands);
      expect(guessed).toEqual(["get", "script"]);
      expect(retaken).toEqual(["script", "script"]);

      await eventually(() => recordCount(owner), (count) => count === 3);
      const cost = await recordedCostOf(owner);
      expect(cost.total).toBeGreaterThan(0);
      const counters = await eventually(
        () => countersOf(owner),
        (values) => Number(values.owner) === cost.total,
      );
      expect(Number(counters.owner)).toBe(cost.total);
    });

    it("never serves B's next call with a secret replaced through A before B heard of it; the key's counter ends at what it cost", async () => {
      const owner = "user:trip-rotate";
      const token = await instanceA.token("trip-rotate", { tier: "premium" });
      const oldSecret = openAiKey();
      const id = await createKey(token, oldSecret);
      const limited = await instanceA.request("PATCH", `/api/v1/api-keys/${id}`, { token, body: { monthlyLimitUsd: 2 } });
      expect(limited.status, limited.text).toBe(200);
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "byok");

      const newSecret = openAiKey();
      mock.setKey(newSecret, "valid");
      const watched = await callBeforeBHears(token, "after rotation", async () => {
        const rotated = await instanceA.request("PUT", `/api/v1/api-keys/${id}/secret`, { token, body: { apiKey: newSecret } });
        expect(rotated.status, rotated.text).toBe(200);
      });

      expect(watched.source).toBe("byok");
      expect(watched.upstreamKeys).toEqual([newSecret]);
      const [guessed, retaken] = splitByTrip(watched.seen.redisCommands);
      expect(guessed).toEqual(["get", "script"]);
      expect(retaken).toEqual(["script"]);

      await eventually(() => recordCount(owner), (count) => count === 3);
      const cost = await recordedCostOf(owner);
      const counters = await eventually(
        () => countersOf(owner),
        (values) => Number(values.owner) === cost.total && Number(values[`key:${id}`]) === cost.byKey[id],
      );
      expect(Number(counters.owner)).toBe(cost.total);
      expect(Number(counters[`key:${id}`])).toBe(cost.byKey[id]);
    });

    it("does not refuse on a guess the version overturns: a platform guess over its limit, the owner having just added a key", async () => {
      const token = await instanceA.token("trip-limit", { tier: "trial" });
      expect((await chat(instanceB, token, body("the day's one platform call"))).headers.get("x-keyport-key-source")).toBe("platform");
      const limited = await chat(instanceB, token, body("one too many"));
      expect(limited.status, limited.text).toBe(429);
      expect(limited.body.error.code).toBe("rate_limit_exceeded");

      const apiKey = openAiKey();
      const watched = await callBeforeBHears(token, "with a key of my own", async () => void (await createKey(token, apiKey)));
      expect(watched.source).toBe("byok");
      expect(watched.upstreamKeys).toEqual([apiKey]);
      // The rate limit was asked for the guess (and refused it) in the first round trip.
      expect(splitByTrip(watched.seen.redisCommands)[0]).toEqual(["get", "script"]);
    });

    it("refuses a capped call with 503, as without a guess, when Redis stops answering commands while the subscription still looks live", async () => {
      const token = await instanceA.token("trip-redis-lost", { tier: "premium" });
      await createKey(token, openAiKey());
      await putLimits(instanceA, token, { monthlyBudgetUsd: 5 });
      await warm(instanceB, token, "byok");

      const mark = mock.requests().length;
      watcher.failCommands(true);
      let refused: TestResponse;
      try {
        refused = await chat(instanceB, token, body("while Redis is lost"));
      } finally {
        watcher.failCommands(false);
      }
      expect(refused.status, refused.text).toBe(503);
      expect(refused.body.error.code).toBe("unavailable");
      expect(inferenceCalls(mock, mark)).toEqual([]);
      // And once it answers again, so does the call.
      expect((await chat(instanceB, token, body("Redis is back"))).status).toBe(200);
    });
  });
});

/** Command names grouped by the round trip they went in, in order. */
function splitByTrip(commands: readonly { name: string; answersBefore: number }[]): string[][] {
  const trips = new Map<number, string[]>();
  for (const command of commands) trips.set(command.answersBefore, [...(trips.get(command.answersBefore) ?? []), command.name]);
  return [...trips.values()];
}
