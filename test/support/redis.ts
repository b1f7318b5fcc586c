import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { isAppError } from "../../src/lib/errors.js";
import { connectRedis, waitForRedis } from "../../src/redis/connect-redis.js";
import { describeWithService, type ProbeOutcome } from "./service-suite.js";

const DEFAULT_URL = "redis://127.0.0.1:6379";
const PROBE_TIMEOUT_MS = 2_000;

/** The Redis server tests use: `TEST_REDIS_URL`, or the local default. */
export function redisTestUrl(): string {
  const configured = process.env.TEST_REDIS_URL?.trim();
  return configured === undefined || configured === "" ? DEFAULT_URL : configured;
}

/** The URL with any password masked, for messages. */
function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

// One probe per URL and test file, however many suites ask.
const probes = new Map<string, Promise<ProbeOutcome>>();

/** Connects once with a short timeout and sends PING; resolves with the reason on failure. */
export function probeRedis(url: string): Promise<ProbeOutcome> {
  const known = probes.get(url);
  if (known !== undefined) return known;
  const probe = (async (): Promise<ProbeOutcome> => {
    const redis = connectRedis(url, { name: "keyport-test-probe" });
    try {
      await waitForRedis(redis, PROBE_TIMEOUT_MS);
      await redis.ping();
      return { reachable: true };
    } catch (error) {
      const reason = isAppError(error) && typeof error.internal.reason === "string" ? error.internal.reason : "no answer";
      return { reachable: false, reason };
    } finally {
      redis.disconnect();
    }
  })();
  probes.set(url, probe);
  return probe;
}

/**
 * Registers `body` when Redis answers at `redisTestUrl()`; fails under `CI=true` and is skipped
 * with a loud warning otherwise.
 */
export async function describeRedis(name: string, body: (url: string) => void): Promise<void> {
  const url = redisTestUrl();
  await describeWithService(name, { service: "Redis", where: maskPassword(url), value: url, check: () => probeRedis(url) }, body);
}

/** A ready connection (commands sent before ready would fail: there is no offline queue). */
export async function openTestRedis(url: string, name = "keyport-test"): Promise<Redis> {
  const redis = connectRedis(url, { name });
  await waitForRedis(redis);
  return redis;
}

/** A key prefix (and channel name) no other test or parallel run shares. */
export function uniqueTestPrefix(label: string): string {
  return `keyport:test:${label}:${randomBytes(6).toString("hex")}:`;
}

/** Deletes every key under a test prefix; refuses prefixes that are not test prefixes. */
export async function deleteTestKeys(redis: Redis, prefix: string): Promise<void> {
  if (!/^keyport:test:[a-z0-9-]+:[0-9a-f]+:$/.test(prefix)) throw new Error(`Refusing to delete keys under ${prefix}: not a test prefix`);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}
