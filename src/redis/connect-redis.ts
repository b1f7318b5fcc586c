import { Redis } from "ioredis";
import { DependencyUnavailableError } from "../lib/errors.js";
import { scrubSecrets } from "../lib/scrub.js";

/** Default for `commandTimeoutMs`: long enough for a Lua check under load, short enough for a hot path. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;

/** Default for `waitForRedis`. */
const DEFAULT_READY_TIMEOUT_MS = 5_000;

/** CLIENT SETNAME refuses spaces and other odd characters; a bad name must not break the connection. */
const CONNECTION_NAME_UNSAFE = /[^A-Za-z0-9._:-]/g;

export type ConnectRedisOptions = {
  /** Shown in `CLIENT LIST` (e.g. `keyport-limits`), so operators can tell connections apart. */
  name?: string;
  /** A command that gets no answer in this time fails. Default `2000`. */
  commandTimeoutMs?: number;
  /**
   * Receives connection errors. ioredis emits one on every failed reconnect attempt, so expect
   * repeats while Redis is down; log them through the redacting logger. Default: ignored.
   */
  onError?: (error: Error) => void;
};

/**
 * Opens a Redis connection that fails fast: while Redis is unreachable, commands reject at once
 * (no offline queue, one retry per request) instead of queueing behind a reconnect, so each
 * concern's failure policy (fail open for rate limits, closed for budgets) can act. The client
 * keeps reconnecting in the background. The caller owns the connection and `quit()`s it.
 */
export function connectRedis(url: string, options: ConnectRedisOptions = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    ...(options.name === undefined ? {} : { connectionName: options.name.replace(CONNECTION_NAME_UNSAFE, "-") }),
  });
  const onError = options.onError;
  // Without a listener, an `error` event (every failed reconnect) would crash the process.
  redis.on("error", (error: Error) => {
    if (onError !== undefined) onError(error);
  });
  return redis;
}

/**
 * Resolves once the connection is ready for commands (with no offline queue, a command sent
 * earlier fails). Rejects with an `unavailable` AppError after `timeoutMs` (default 5000) or
 * when the connection is closed for good.
 */
export function waitForRedis(redis: Redis, timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("end", onEnd);
      redis.off("error", onError);
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(redisUnavailable(lastError ?? new Error("connection closed"), "Redis is not reachable"));
    };
    const onError = (error: unknown) => {
      lastError = error;
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(redisUnavailable(lastError ?? new Error(`not ready after ${timeoutMs} ms`), "Redis is not reachable"));
    }, timeoutMs);
    redis.on("ready", onReady);
    redis.on("end", onEnd);
    redis.on("error", onError);
  });
}

/**
 * An `unavailable` error (503, `retry-after`) for a failed Redis command. The client's error is
 * not attached (its properties can hold the command's arguments); its message, scrubbed, goes to
 * `internal`.
 */
export function redisUnavailable(error: unknown, publicMessage: string): DependencyUnavailableError {
  if (error instanceof DependencyUnavailableError) return error;
  const reason = error instanceof Error ? error.message : "unknown error";
  return new DependencyUnavailableError("redis", publicMessage, { reason: scrubSecrets(reason) });
}
