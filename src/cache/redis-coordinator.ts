import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { AppError } from "../lib/errors.js";
import { redisUnavailable } from "../redis/connect-redis.js";
import type { CacheCoordinator, ChangeTicket } from "./cache-coordinator.js";

/** A settled version key outlives any cache entry by far; refreshed on every change. */
const VERSION_TTL_SECONDS = 7 * 86_400;

/** Default for `changeLeaseMs`. */
const DEFAULT_CHANGE_LEASE_MS = 5 * 60_000;

/** Default for `heartbeatMs`. */
const DEFAULT_HEARTBEAT_MS = 1_000;

/** Default wait for the subscription in `ready()`. */
const READY_TIMEOUT_MS = 5_000;

/** ioredis registers the scripts under these names (EVALSHA, falling back to EVAL on NOSCRIPT). */
const BEGIN_COMMAND = "keyportCacheBegin";
const END_COMMAND = "keyportCacheEnd";

const PUBLIC_MESSAGE = "Key cache coordination is temporarily unavailable";

/**
 * The version key holds `<version>` when the owner is settled and `<version>|<id>,<id>…` while
 * changes are in progress (each id one `beginChange` not yet ended). Both scripts read it, take the
 * next version (the larger of "current + 1" and the server's clock in microseconds, so even after
 * Redis lost its data a version never comes back to a value some cache may still hold), write it
 * back and publish the owner. KEYS: the version key. ARGV: lease ms, channel, owner, change id,
 * settled expiry seconds.
 */
const READ_AND_ADVANCE = `
local raw = redis.call('GET', KEYS[1])
local current = 0
local pending = ''
if raw then
  local bar = string.find(raw, '|', 1, true)
  if bar then
    current = tonumber(string.sub(raw, 1, bar - 1)) or 0
    pending = string.sub(raw, bar + 1)
  else
    current = tonumber(raw) or 0
  end
end
local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local next = current + 1
if nowUs > next then next = nowUs end
`;

/**
 * Adds the change id and (re)starts the lease: the key expires `leaseMs` after the last change
 * began, so the ids of an instance that died mid-change do not keep the owner uncached for long.
 */
const BEGIN_SCRIPT = `${READ_AND_ADVANCE}
if pending == '' then pending = ARGV[4] else pending = pending .. ',' .. ARGV[4] end
redis.call('SET', KEYS[1], string.format('%d', next) .. '|' .. pending, 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return next
`;

/**
 * Removes the change id (none for a plain bump): settled again when no other change is in
 * progress, else still pending under the lease it had. Ending twice is harmless.
 */
const END_SCRIPT = `${READ_AND_ADVANCE}
local rest = {}
for id in string.gmatch(pending, '[^,]+') do
  if id ~= ARGV[4] then rest[#rest + 1] = id end
end
if #rest == 0 then
  redis.call('SET', KEYS[1], string.format('%d', next), 'EX', ARGV[5])
else
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl <= 0 then ttl = tonumber(ARGV[1]) end
  redis.call('SET', KEYS[1], string.format('%d', next) .. '|' .. table.concat(rest, ','), 'PX', ttl)
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return next
`;

type ScriptCommands = {
  [BEGIN_COMMAND](versionKey: string, leaseMs: number, channel: string, owner: string, id: string): Promise<unknown>;
  [END_COMMAND](versionKey: string, leaseMs: number, channel: string, owner: string, id: string, ttlSeconds: number): Promise<unknown>;
};

export type RedisCacheCoordinatorOptions = {
  /** Command connection. */
  redis: Redis;
  /** A connection used for nothing but the subscription (Redis refuses other commands on it). */
  subscriber: Redis;
  /** Put in front of the version keys (`<prefix>keyver:<owner>`) and the channel (`<prefix>key-changes`). */
  prefix: string;
  /**
   * How long an owner stays uncached after a change began whose end never arrived (the
   * instance died, or lost Redis for good), in milliseconds. Must exceed the longest time a change
   * takes to commit and the caches' entry lifetime. Default `300000`.
   */
  changeLeaseMs?: number;
  /** How often the subscription is checked with a PING, in milliseconds. Default `1000`. */
  heartbeatMs?: number;
  /** Told whenever this instance starts or stops receiving invalidations. */
  onListeningChange?: (isListening: boolean) => void;
};

/** The Redis coordinator also tells whether its subscription is live, for startup, health and tests. */
export type RedisCacheCoordinator = CacheCoordinator & {
  /** Resolves once invalidation messages are being received; rejects after `timeoutMs` (default 5000). */
  ready(timeoutMs?: number): Promise<void>;
  /** Whether invalidation messages are being received right now. */
  isListening(): boolean;
};

/**
 * Versions in Redis, shared by every instance; invalidations over pub/sub. `version` is one GET
 * per cache read: the price of strictness across instances (pub/sub alone can drop a message
 * while a subscriber reconnects). The gateway does not wait for it alone: it sends the call's
 * rate limit and reservation with it (`KeyCache.getWithGuess`), one round trip for all three.
 *
 * While the subscription is down (the connection closed, or a PING on it went unanswered)
 * `version` answers `undefined` without asking Redis, so the cache serves nothing it holds and
 * stores nothing it loads; losing and regaining the subscription each tell `onInvalidateAll`, so
 * nothing cached before an outage is served after it. Both connections belong to the caller;
 * `close()` only unsubscribes.
 */
export function createRedisCacheCoordinator(options: RedisCacheCoordinatorOptions): RedisCacheCoordinator {
  const channel = `${options.prefix}key-changes`;
  const keyPrefix = `${options.prefix}keyver:`;
  const changeLeaseMs = options.changeLeaseMs ?? DEFAULT_CHANGE_LEASE_MS;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!Number.isSafeInteger(changeLeaseMs) || changeLeaseMs < 1) throw new Error("changeLeaseMs must be a positive integer");
  if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < 1) throw new Error("heartbeatMs must be a positive integer");
  const { subscriber } = options;
  options.redis.defineCommand(BEGIN_COMMAND, { numberOfKeys: 1, lua: BEGIN_SCRIPT });
  options.redis.defineCommand(END_COMMAND, { numberOfKeys: 1, lua: END_SCRIPT });
  // defineCommand adds the methods at run time; ioredis cannot type them.
  const redis = options.redis as Redis & ScriptCommands;
  const handlers: Array<(owner: string) => void> = [];
  const allHandlers: Array<() => void> = [];
  const listeningWaiters = new Set<() => void>();
  let isClosed = false;
  let isListening = false;

  function setListening(value: boolean): void {
    if (value === isListening || (isClosed && value)) return;
    isListening = value;
    // Lost: messages may be missed from now on. Regained: some may have been missed meanwhile.
    for (const handler of [...allHandlers]) handler();
    options.onListeningChange?.(value);
    if (value) for (const resolve of [...listeningWaiters]) resolve();
  }

  const onMessage = (from: string, owner: string) => {
    if (from !== channel || isClosed) return;
    for (const handler of [...handlers]) handler(owner);
  };
  subscriber.on("message", onMessage);

  // With no offline queue a SUBSCRIBE sent before the connection is ready fails, so subscribe on
  // every `ready` (a repeated SUBSCRIBE is harmless; ioredis also resubscribes after reconnects).
  const subscribe = () => {
    if (isClosed) return;
    subscriber.subscribe(channel).then(
      () => setListening(subscriber.status === "ready"),
      () => setListening(false),
    );
  };
  const onClose = () => setListening(false);
  subscriber.on("ready", subscribe);
  subscriber.on("close", onClose);
  if (subscriber.status === "ready") subscribe();

  // A connection that stalls (a network partition, a paused peer) raises no event: ask it. A PING
  // is allowed in subscriber mode and fails after the connection's command timeout.
  let isPinging = false;
  const heartbeat = setInterval(() => {
    if (!isListening || isPinging) return;
    isPinging = true;
    subscriber.ping().then(
      () => {
        isPinging = false;
      },
      () => {
        isPinging = false;
        if (isClosed) return;
        setListening(false);
        // Reconnect: the `ready` that follows subscribes again and resynchronises.
        if (subscriber.status === "ready") subscriber.disconnect(true);
      },
    );
  }, heartbeatMs);
  heartbeat.unref();

  const end = async (owner: string, id: string): Promise<void> => {
    try {
      await redis[END_COMMAND](`${keyPrefix}${owner}`, changeLeaseMs, channel, owner, id, VERSION_TTL_SECONDS);
    } catch (error) {
      throw redisUnavailable(error, PUBLIC_MESSAGE);
    }
  };

  return {
    async version(owner: string): Promise<number | undefined> {
      // Not listening: an announcement may have been missed, so nothing cached is trusted.
      if (!isListening) return undefined;
      let raw: string | null;
      try {
        raw = await redis.get(`${keyPrefix}${owner}`);
      } catch (error) {
        throw redisUnavailable(error, PUBLIC_MESSAGE);
      }
      if (raw === null) return 0;
      if (raw.includes("|")) return undefined;
      const version = Number(raw);
      if (!Number.isSafeInteger(version)) {
        throw new AppError("internal", "Internal error", { internal: { reason: "cache version key does not hold an integer" } });
      }
      return version;
    },
    async beginChange(owner: string): Promise<ChangeTicket> {
      const id = randomBytes(8).toString("hex");
      try {
        await redis[BEGIN_COMMAND](`${keyPrefix}${owner}`, changeLeaseMs, channel, owner, id);
      } catch (error) {
        throw redisUnavailable(error, PUBLIC_MESSAGE);
      }
      return { owner, id };
    },
    endChange: (ticket: ChangeTicket) => end(ticket.owner, ticket.id),
    // An id no change has: nothing in progress is ended, the version moves.
    bump: (owner: string) => end(owner, ""),
    onInvalidate(handler: (owner: string) => void): void {
      handlers.push(handler);
    },
    onInvalidateAll(handler: () => void): void {
      allHandlers.push(handler);
    },
    isListening: () => isListening,
    async ready(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
      if (isListening) return;
      let timer: NodeJS.Timeout | undefined;
      let done: (() => void) | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          done = resolve;
          listeningWaiters.add(resolve);
          timer = setTimeout(() => reject(redisUnavailable(new Error(`not subscribed after ${timeoutMs} ms`), PUBLIC_MESSAGE)), timeoutMs);
        });
      } finally {
        clearTimeout(timer);
        if (done !== undefined) listeningWaiters.delete(done);
      }
    },
    async close(): Promise<void> {
      if (isClosed) return;
      isClosed = true;
      clearInterval(heartbeat);
      handlers.length = 0;
      allHandlers.length = 0;
      isListening = false;
      subscriber.off("message", onMessage);
      subscriber.off("ready", subscribe);
      subscriber.off("close", onClose);
      if (subscriber.status === "ready") await subscriber.unsubscribe(channel).catch(() => {});
    },
  };
}
