import type { Clock } from "../lib/clock.js";
import type { OwnerLimitsRow } from "../store/ports.js";

/** What the gateway needs of an owner's limits on every call. */
export type CachedLimits = { budgetNanoUsd: number | null; thresholdNanoUsd: number | null };

const NO_LIMITS: CachedLimits = Object.freeze({ budgetNanoUsd: null, thresholdNanoUsd: null });

/**
 * Owners' limits in memory, so a gateway call learns whether the owner has a budget without a
 * database (or Redis) round trip. An entry is dropped when the key-change channel names its owner
 * (`onInvalidate`: the limits are saved through the key cache's `change`, which announces the
 * owner to every instance) and when the channel resynchronises (`onInvalidateAll`), and is never
 * served past `ttlMs` (a missed announcement heals by then).
 */
export function createLimitsCache(options: {
  load: (owner: string) => Promise<OwnerLimitsRow | undefined>;
  ttlMs: number;
  clock: Clock;
  maxEntries?: number;
  onInvalidate: (handler: (owner: string) => void) => void;
  onInvalidateAll: (handler: () => void) => void;
}) {
  const maxEntries = options.maxEntries ?? 10_000;
  const entries = new Map<string, { value: CachedLimits; expiresAtMs: number }>();
  // A load that started before an invalidation must not store what it read: each invalidation
  // takes the next generation; a load keeps its result only if no invalidation of its owner (and
  // no forgetting of them all) came after it started.
  const generations = new Map<string, number>();
  let generation = 0;
  let forgottenAt = 0;

  function invalidateOwner(owner: string): void {
    entries.delete(owner);
    generations.set(owner, ++generation);
    // Bounded: past the limit every owner's generation is forgotten at once, which discards
    // every load still running (never one that raced an invalidation).
    if (generations.size > maxEntries) forgetAll();
  }
  function forgetAll(): void {
    entries.clear();
    generations.clear();
    forgottenAt = ++generation;
  }

  options.onInvalidate(invalidateOwner);
  options.onInvalidateAll(forgetAll);

  async function load(owner: string): Promise<CachedLimits> {
    const startedAt = generation;
    const row = await options.load(owner);
    const value = row === undefined ? NO_LIMITS : { budgetNanoUsd: row.monthlyBudgetNanoUsd, thresholdNanoUsd: row.notifyThresholdNanoUsd };
    const changedAt = generations.get(owner) ?? 0;
    if (changedAt <= startedAt && forgottenAt <= startedAt) {
      entries.delete(owner);
      entries.set(owner, { value, expiresAtMs: options.clock.now().getTime() + options.ttlMs });
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done !== true) entries.delete(oldest.value);
      }
    }
    return value;
  }

  return {
    /** The owner's limits: the value itself on a hit (no promise), a promise on a miss. */
    get(owner: string): CachedLimits | Promise<CachedLimits> {
      const entry = entries.get(owner);
      if (entry !== undefined && entry.expiresAtMs > options.clock.now().getTime()) return entry.value;
      return load(owner);
    },
    /** Drops the owner here (the writer's own instance, before the announcement arrives). */
    forget: invalidateOwner,
  };
}

export type LimitsCache = ReturnType<typeof createLimitsCache>;
