import { type Clock, systemClock } from "./clock.js";
import type { Dependency } from "./errors.js";

/**
 * Every way this instance can run degraded, with what it means for callers. `/readyz` lists the
 * active ones; a metrics module can export one gauge per name (all names are known up front).
 */
export const DEGRADATIONS = {
  database_unreachable:
    "The database cannot be reached: the management API and gateway calls of owners whose key record is not cached answer 503 with retry-after.",
  redis_unreachable: "Redis cannot be reached.",
  rate_limits_not_enforced: "Platform-key rate limits are not enforced while Redis is unreachable (KEYPORT_RATE_LIMIT_ON_ERROR=open).",
  platform_calls_refused: "Platform-key calls answer 503 while Redis is unreachable (KEYPORT_RATE_LIMIT_ON_ERROR=closed).",
  key_cache_bypassed: "This instance receives no key-cache invalidations: every gateway call reads its key record from the database.",
  key_changes_refused: "Key changes (create, update, rotate, delete, test) answer 503 until Redis is back: no instance could be told about them.",
  invalidations_pending: "Committed key changes are still being announced to the other instances (retried until Redis takes them).",
} as const;

export type Degradation = keyof typeof DEGRADATIONS;

export const DEGRADATION_NAMES = Object.keys(DEGRADATIONS) as Degradation[];

export type DependencyStatus = "ok" | "unreachable" | "not_configured";

export type HealthSnapshot = {
  /** Whether this instance can serve traffic: what `/readyz` answers 200 or 503 for. */
  ready: boolean;
  /** `ready` with nothing degraded, `degraded` (still ready), or `not_ready`. */
  status: "ready" | "degraded" | "not_ready";
  dependencies: Record<Dependency, { status: DependencyStatus; since: string }>;
  /** Active degradations, oldest first. */
  degraded: { name: Degradation; since: string; message: string }[];
  /** Why the instance is not ready (empty when it is). */
  notReadyBecause: string[];
  /** Committed key changes whose announcement is being retried. */
  pendingAnnouncements: number;
};

export type HealthRegistryOptions = {
  /** Whether Redis is configured (`REDIS_URL`); without it Redis is `not_configured`. */
  usesRedis: boolean;
  /** `KEYPORT_RATE_LIMIT_ON_ERROR`: decides whether an unreachable Redis leaves the instance ready. */
  rateLimitOnError: "open" | "closed";
  clock?: Clock;
};

/**
 * What this instance knows about its own health, in one place: the state of each dependency and
 * of the key cache's invalidation feed, reported by the code that sees them; readiness and the
 * degraded list are derived from them and the failure policies. `/readyz` renders `snapshot()`;
 * a metrics module can read it at scrape time or follow `onChange`.
 *
 * Readiness fails only when the instance cannot serve: it is stopping; Redis is down and the
 * platform rate-limit policy is `closed`; or the database is down and the key cache cannot serve
 * (Redis, which keeps it honest across instances, is down or not delivering invalidations).
 */
export type HealthRegistry = {
  setDependency(dependency: Dependency, isUp: boolean): void;
  /** Whether the key cache receives invalidations (always true without Redis). */
  setKeyCacheListening(isListening: boolean): void;
  setPendingAnnouncements(count: number): void;
  /** The instance is shutting down: not ready from now on. */
  setStopping(): void;
  snapshot(): HealthSnapshot;
  /** Called after every change of state; returns a function that stops the calls. */
  onChange(listener: (snapshot: HealthSnapshot) => void): () => void;
};

export function createHealthRegistry(options: HealthRegistryOptions): HealthRegistry {
  const clock = options.clock ?? systemClock;
  const startedAt = clock.now().toISOString();
  const dependencies: HealthSnapshot["dependencies"] = {
    database: { status: "ok", since: startedAt },
    redis: { status: options.usesRedis ? "ok" : "not_configured", since: startedAt },
  };
  let isListening = true;
  let pendingAnnouncements = 0;
  let isStopping = false;
  /** When each active degradation began. Map order is activation order. */
  const active = new Map<Degradation, string>();
  const listeners = new Set<(snapshot: HealthSnapshot) => void>();

  function currentDegradations(): Degradation[] {
    const names: Degradation[] = [];
    if (dependencies.database.status === "unreachable") names.push("database_unreachable");
    if (dependencies.redis.status === "unreachable") {
      names.push("redis_unreachable", "key_changes_refused");
      names.push(options.rateLimitOnError === "open" ? "rate_limits_not_enforced" : "platform_calls_refused");
    }
    if (options.usesRedis && (!isListening || dependencies.redis.status === "unreachable")) names.push("key_cache_bypassed");
    if (pendingAnnouncements > 0) names.push("invalidations_pending");
    return names;
  }

  function changed(): void {
    const now = clock.now().toISOString();
    const names = new Set(currentDegradations());
    for (const name of [...active.keys()]) if (!names.has(name)) active.delete(name);
    for (const name of names) if (!active.has(name)) active.set(name, now);
    const snapshot = registry.snapshot();
    for (const listener of [...listeners]) listener(snapshot);
  }

  const registry: HealthRegistry = {
    setDependency(dependency: Dependency, isUp: boolean): void {
      const status: DependencyStatus = isUp ? "ok" : "unreachable";
      if (dependencies[dependency].status === status || dependencies[dependency].status === "not_configured") return;
      dependencies[dependency] = { status, since: clock.now().toISOString() };
      changed();
    },
    setKeyCacheListening(value: boolean): void {
      if (value === isListening) return;
      isListening = value;
      changed();
    },
    setPendingAnnouncements(count: number): void {
      if (count === pendingAnnouncements) return;
      const wasPending = pendingAnnouncements > 0;
      pendingAnnouncements = count;
      if (wasPending !== count > 0) changed();
    },
    setStopping(): void {
      if (isStopping) return;
      isStopping = true;
      changed();
    },
    snapshot(): HealthSnapshot {
      const notReadyBecause: string[] = [];
      if (isStopping) notReadyBecause.push("shutting down");
      const redisDown = dependencies.redis.status === "unreachable";
      if (redisDown && options.rateLimitOnError === "closed") {
        notReadyBecause.push("Redis is unreachable and KEYPORT_RATE_LIMIT_ON_ERROR=closed refuses platform-key calls");
      }
      const cacheCanServe = !options.usesRedis || (isListening && !redisDown);
      if (dependencies.database.status === "unreachable" && !cacheCanServe) {
        notReadyBecause.push("the database is unreachable and the key cache cannot serve without Redis");
      }
      const ready = notReadyBecause.length === 0;
      return {
        ready,
        status: !ready ? "not_ready" : active.size > 0 ? "degraded" : "ready",
        dependencies: { database: { ...dependencies.database }, redis: { ...dependencies.redis } },
        degraded: [...active].map(([name, since]) => ({ name, since, message: DEGRADATIONS[name] })),
        notReadyBecause,
        pendingAnnouncements,
      };
    },
    onChange(listener: (snapshot: HealthSnapshot) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return registry;
}

/** A check that resolves when its dependency answers. */
export type DependencyCheck = () => Promise<unknown>;

/** Default for `timeoutMs`. */
const DEFAULT_PROBE_TIMEOUT_MS = 2_000;

/**
 * Asks each dependency once (bounded by `timeoutMs`, default 2000) and records the answers in the
 * registry. Concurrent calls share one round of checks.
 */
export function createDependencyProbe(options: {
  registry: HealthRegistry;
  checks: Partial<Record<Dependency, DependencyCheck>>;
  timeoutMs?: number;
  /** Told about every failed check (log it). */
  onFailure?: (dependency: Dependency, error: unknown) => void;
}): () => Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let running: Promise<void> | undefined;

  async function checkOne(dependency: Dependency, check: DependencyCheck): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      options.registry.setDependency(dependency, true);
    } catch (error) {
      options.onFailure?.(dependency, error);
      options.registry.setDependency(dependency, false);
    } finally {
      clearTimeout(timer);
    }
  }

  const dependencies = (Object.keys(options.checks) as Dependency[]).flatMap((dependency) => {
    const check = options.checks[dependency];
    return check === undefined ? [] : [{ dependency, check }];
  });

  return () => {
    running ??= Promise.all(dependencies.map(({ dependency, check }) => checkOne(dependency, check))).then(() => {
      running = undefined;
    });
    return running;
  };
}
