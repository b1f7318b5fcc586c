import type { Redis } from "ioredis";
import { AppError } from "../lib/errors.js";
import { redisUnavailable } from "../redis/connect-redis.js";
import type { BudgetMonth, BudgetRepo, BudgetReserveResult } from "../store/ports.js";
import type { BudgetLedger } from "./ledger.js";
import type { BudgetPeriod } from "./period.js";

const RESERVE_COMMAND = "keyportBudgetReserve";
const SEED_COMMAND = "keyportBudgetSeed";
const ADJUST_COMMAND = "keyportBudgetAdjust";

/** A month's counters are kept this long after the month ends (the Limits panel may still ask). */
const KEEP_AFTER_MONTH_SECONDS = 35 * 86_400;

/**
 * KEYS: the owner's hash for the month. ARGV: amount, expiry (unix seconds), then counter and
 * limit pairs. A counter that does not exist yet is reported (reply `{2, counter…}`) and nothing
 * changes: the caller seeds it from the database and asks again. Otherwise either every counter
 * takes the amount (`{1, value…}`) or none does (`{0, counter, value}`: the first cap passed).
 */
const RESERVE_SCRIPT = `
local amount = tonumber(ARGV[1])
local count = (#ARGV - 2) / 2
local missing = {2}
for i = 1, count do
  local counter = ARGV[1 + 2 * i]
  if redis.call('HEXISTS', KEYS[1], counter) == 0 then missing[#missing + 1] = counter end
end
if #missing > 1 then return missing end
for i = 1, count do
  local counter = ARGV[1 + 2 * i]
  local spent = tonumber(redis.call('HGET', KEYS[1], counter))
  if spent + amount > tonumber(ARGV[2 + 2 * i]) then return {0, counter, tostring(spent)} end
end
local reply = {1}
for i = 1, count do
  reply[#reply + 1] = tostring(redis.call('HINCRBY', KEYS[1], ARGV[1 + 2 * i], amount))
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return reply
`;

/** KEYS: the hash. ARGV: expiry, then counter and starting value pairs; an existing counter is kept. */
const SEED_SCRIPT = `
for i = 1, (#ARGV - 1) / 2 do
  redis.call('HSETNX', KEYS[1], ARGV[2 * i], ARGV[2 * i + 1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
`;

/** KEYS: the hash. ARGV: delta, then counters; only counters that exist change. Returns counter and value pairs. */
const ADJUST_SCRIPT = `
local reply = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    reply[#reply + 1] = ARGV[i]
    reply[#reply + 1] = tostring(redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[1]))
  end
end
return reply
`;

type BudgetCommands = {
  [RESERVE_COMMAND](key: string, ...args: (string | number)[]): Promise<unknown>;
  [SEED_COMMAND](key: string, ...args: (string | number)[]): Promise<unknown>;
  [ADJUST_COMMAND](key: string, ...args: (string | number)[]): Promise<unknown>;
};

const PUBLIC_MESSAGE = "Spend limits cannot be checked right now; retry shortly";

/**
 * The Redis ledger, shared by every instance: one hash per owner and month, one atomic script
 * per reservation (one round trip), nothing read from the database except to seed a counter the
 * first time its cap counts in a month. Redis unreachable: the reservation rejects with
 * `unavailable` (budgets fail closed).
 */
export function createRedisBudgetLedger(options: { redis: Redis; keyPrefix: string; budgets: Pick<BudgetRepo, "settledSpend"> }): BudgetLedger {
  const { keyPrefix, budgets } = options;
  options.redis.defineCommand(RESERVE_COMMAND, { numberOfKeys: 1, lua: RESERVE_SCRIPT });
  options.redis.defineCommand(SEED_COMMAND, { numberOfKeys: 1, lua: SEED_SCRIPT });
  options.redis.defineCommand(ADJUST_COMMAND, { numberOfKeys: 1, lua: ADJUST_SCRIPT });
  // defineCommand adds the methods at run time; ioredis cannot type them.
  const redis = options.redis as Redis & BudgetCommands;
  // The hash tag puts an owner's budget in the same cluster slot as its rate-limit counters.
  const hashKey = (owner: string, month: string) => `${keyPrefix}{${owner}}:${month}`;
  const expiry = (period: Pick<BudgetPeriod, "resetsAt">) => Math.floor(Date.parse(period.resetsAt) / 1000) + KEEP_AFTER_MONTH_SECONDS;

  async function run<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw redisUnavailable(error, PUBLIC_MESSAGE);
    }
  }

  async function seed(owner: string, period: BudgetPeriod & BudgetMonth, counters: string[]): Promise<void> {
    const settled = await budgets.settledSpend(owner, period, counters);
    const pairs = counters.flatMap((counter) => [counter, settled[counter] ?? 0]);
    await run(() => redis[SEED_COMMAND](hashKey(owner, period.month), expiry(period), ...pairs));
  }

  return {
    async reserve(owner, period, caps, amountNanoUsd): Promise<BudgetReserveResult> {
      const args = caps.flatMap((cap) => [cap.counter, cap.limitNanoUsd]);
      // A counter missing in one pass is seeded before the next (one more pass for a counter
      // dropped in between).
      for (let pass = 0; pass < 3; pass += 1) {
        const reply = await run(() => redis[RESERVE_COMMAND](hashKey(owner, period.month), amountNanoUsd, expiry(period), ...args));
        if (!Array.isArray(reply) || reply.length === 0) break;
        const [status, ...rest] = reply as [number, ...string[]];
        if (status === 1) return { ok: true, spentNanoUsd: Object.fromEntries(caps.map((cap, index) => [cap.counter, Number(rest[index])])) };
        if (status === 0) return { ok: false, counter: String(rest[0]), spentNanoUsd: Number(rest[1]) };
        if (status === 2) await seed(owner, period, rest.map(String));
      }
      throw new AppError("internal", "Internal error", { internal: { reason: "unexpected reply from the budget reserve script" } });
    },

    async adjust(owner, month, counters, deltaNanoUsd): Promise<Record<string, number>> {
      if (counters.length === 0) return {};
      const reply = await run(() => redis[ADJUST_COMMAND](hashKey(owner, month), deltaNanoUsd, ...counters));
      const values: Record<string, number> = {};
      if (Array.isArray(reply)) for (let index = 0; index + 1 < reply.length; index += 2) values[String(reply[index])] = Number(reply[index + 1]);
      return values;
    },

    async spent(owner, period, counters): Promise<Record<string, number>> {
      const values = counters.length === 0 ? [] : await run(() => redis.hmget(hashKey(owner, period.month), ...counters));
      const missing = counters.filter((_, index) => values[index] === null || values[index] === undefined);
      const settled = missing.length === 0 ? {} : await budgets.settledSpend(owner, period, missing);
      return Object.fromEntries(counters.map((counter, index) => [counter, values[index] == null ? (settled[counter] ?? 0) : Number(values[index])]));
    },

    async drop(owner, month, counter): Promise<void> {
      await run(() => redis.hdel(hashKey(owner, month), counter));
    },
  };
}
