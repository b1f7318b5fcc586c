import { systemClock, type Clock } from "../lib/clock.js";
import { DependencyUnavailableError } from "../lib/errors.js";
import type { CacheCoordinator, ChangeTicket } from "./cache-coordinator.js";
import { createRetryQueue } from "./retry-queue.js";

/** Default for `maxEntries`. */
const DEFAULT_MAX_ENTRIES = 10_000;
/** Default for `ttlMs`. */
const DEFAULT_TTL_MS = 60_000;

export type KeyCacheOptions = {
  /** Entries kept at most; the least recently read goes first. Default `10000`. */
  maxEntries?: number;
  /** How long an entry is served after it was loaded, in milliseconds. Default `60000`. */
  ttlMs?: number;
  coordinator: CacheCoordinator;
  clock?: Clock;
  /**
   * Told when the coordinator cannot answer. The read then goes to `load` and is not cached,
   * which stays correct (the database is the truth) but costs a database read per call; report it
   * in metrics and `/readyz`. Default: ignored.
   */
  onCoordinatorError?: (error: unknown) => void;
  /** Told how many committed changes still wait to be announced whenever that number changes. */
  onPendingAnnouncements?: (count: number) => void;
  /** Retry timing of announcements that failed. Defaults: 100 ms doubling up to 5 s. */
  retry?: { baseDelayMs?: number; maxDelayMs?: number };
};

/**
 * What a change does when the coordinator cannot record it before it commits: `refuse` throws a
 * 503 (`unavailable`) and nothing is written; `proceed` writes anyway and announces the change
 * (a version bump) once the coordinator answers, while other instances may still serve their
 * copy until then.
 */
export type WhenUnannounced = "refuse" | "proceed";

/**
 * A read-through cache of key records per owner and slot (the provider id), so the gateway does
 * not read the database on every call. Store records as they are in the database (sealed
 * ciphertext, never a decrypted key). Every write to an owner's keys (create, activate,
 * deactivate, rotate, status change, delete) must run through `change(owner, write)`.
 */
export type KeyCache<V> = {
  /**
   * The cached value, or `load()`'s; concurrent misses of one entry share one `load`. Not-found
   * results are cached too. A hit is returned as the value itself, not a promise, when the
   * coordinator answers synchronously (one instance): the gateway reads this on every call.
   */
  get(owner: string, slot: string, load: () => Promise<V>): V | Promise<V>;
  /**
   * `get` for a caller that would rather not wait for the owner's version: when the coordinator
   * answers asynchronously (Redis) and a live entry is held, `guess` is that entry's value, handed
   * out before its version is read back, and `value` is what `get` gives (the very same value
   * when the version is still current). Whatever the caller starts on the guess must wait for
   * `value` and be undone when `value !== guess`. Without an entry, or with a synchronous
   * coordinator, there is no guess.
   */
  getWithGuess(owner: string, slot: string, load: () => Promise<V>): Guessed<V>;
  /**
   * Runs `write`, a change to the owner's keys, so that no instance serves what it cached before
   * once `write` has committed: the change is announced before `write` runs (every instance stops
   * caching the owner) and again after it, whether it succeeded or not. An announcement after
   * `write` that fails is retried in the background until it is made; `change` still resolves
   * with `write`'s result, because the change is committed and until the announcement arrives no
   * instance caches the owner anyway. When the first announcement cannot be made: see
   * {@link WhenUnannounced} (default `refuse`, a `DependencyUnavailableError` for Redis).
   */
  change<T>(owner: string, write: () => Promise<T>, options?: { whenUnannounced?: WhenUnannounced }): Promise<T>;
  /**
   * Drops the owner's entries here and tells every instance (a change made elsewhere). Rejects
   * when the coordinator does not accept it; other instances may then serve their copy until it
   * expires (`ttlMs`).
   */
  invalidate(owner: string): Promise<void>;
  /** Entries held. */
  size(): number;
  /** Announcements of committed changes still being retried. */
  pendingAnnouncements(): number;
  /**
   * Drops everything and makes one last attempt at the announcements still pending; later reads
   * go straight to `load`. The coordinator stays open (its creator closes it).
   */
  close(): Promise<void>;
};

/** What `getWithGuess` answers: the value, and the cached one it may well turn out to be. */
export type Guessed<V> = { value: V | Promise<V>; hasGuess: false } | { value: Promise<V>; hasGuess: true; guess: V };

type Entry<V> = { owner: string; value: V; version: number; expiresAtMs: number };
type Flight<V> = { owner: string; version: number; isStale: boolean; promise: Promise<V> };

/**
 * Creates a bounded, version-checked cache. Each entry remembers the owner's coordinator version
 * at load time and is served only while that version is current, so staleness across instances
 * is ruled out by the version check rather than by the timing of invalidation messages.
 */
export function createKeyCache<V>(options: KeyCacheOptions): KeyCache<V> {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new Error("maxEntries must be a positive integer");
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new Error("ttlMs must be a positive number of milliseconds");
  const { coordinator } = options;
  const clock = options.clock ?? systemClock;
  const onCoordinatorError = options.onCoordinatorError ?? (() => {});
  const announcements = createRetryQueue({
    ...options.retry,
    onError: onCoordinatorError,
    ...(options.onPendingAnnouncements === undefined ? {} : { onSizeChange: options.onPendingAnnouncements }),
  });

  // Map order is recency order (a read moves the entry to the end), which makes eviction LRU.
  const entries = new Map<string, Entry<V>>();
  const keysByOwner = new Map<string, Set<string>>();
  const flights = new Map<string, Flight<V>>();
  let isClosed = false;

  // The owner's length first makes the key unambiguous whatever characters owner and slot hold.
  const entryKey = (owner: string, slot: string) => `${owner.length}:${owner}:${slot}`;

  function remove(key: string): void {
    const entry = entries.get(key);
    if (entry === undefined) return;
    entries.delete(key);
    const keys = keysByOwner.get(entry.owner);
    keys?.delete(key);
    if (keys?.size === 0) keysByOwner.delete(entry.owner);
  }

  function store(key: string, entry: Entry<V>): void {
    remove(key);
    entries.set(key, entry);
    const keys = keysByOwner.get(entry.owner) ?? new Set<string>();
    keys.add(key);
    keysByOwner.set(entry.owner, keys);
    while (entries.size > maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done === true) break;
      remove(oldest.value);
    }
  }

  function dropOwner(owner: string): void {
    for (const key of [...(keysByOwner.get(owner) ?? [])]) remove(key);
    // A load already running may have read the old record: its result must not be stored, and
    // reads from now on must not join it.
    for (const [key, flight] of flights) {
      if (flight.owner === owner) {
        flight.isStale = true;
        flights.delete(key);
      }
    }
  }

  function dropAll(): void {
    for (const flight of flights.values()) flight.isStale = true;
    flights.clear();
    entries.clear();
    keysByOwner.clear();
  }

  coordinator.onInvalidate((owner) => dropOwner(owner));
  coordinator.onInvalidateAll(() => {
    dropAll();
    // Also called when the coordinator's link is back: a good moment for what waits to be announced.
    void announcements.retryNow();
  });

  /**
   * The owner's version; a number right away when the coordinator answers synchronously (one
   * instance); `undefined` when nothing about the owner may be served from or stored in the cache.
   */
  function currentVersion(owner: string): number | Promise<number | undefined> | undefined {
    let version: number | undefined | Promise<number | undefined>;
    try {
      version = coordinator.version(owner);
    } catch (error) {
      onCoordinatorError(error);
      return undefined;
    }
    if (version === undefined || typeof version === "number") return version;
    return version.catch((error: unknown) => {
      onCoordinatorError(error);
      return undefined;
    });
  }

  const isLive = (entry: Entry<V>) => entry.expiresAtMs > clock.now().getTime();

  function read(owner: string, slot: string, version: number | undefined, load: () => Promise<V>): V | Promise<V> {
    // Without a version nothing cached can be trusted, and nothing loaded can be labelled.
    if (version === undefined) return load();
    const key = entryKey(owner, slot);
    const entry = entries.get(key);
    if (entry !== undefined) {
      if (entry.version === version && isLive(entry)) {
        entries.delete(key);
        entries.set(key, entry);
        return entry.value;
      }
      remove(key);
    }
    const flight = flights.get(key);
    if (flight !== undefined && flight.version === version) return flight.promise;
    return startFlight(key, owner, version, load);
  }

  function startFlight(key: string, owner: string, version: number, load: () => Promise<V>): Promise<V> {
    const flight: Flight<V> = {
      owner,
      version,
      isStale: false,
      // Deferred by a tick, so the flight is registered before `load` runs (or throws).
      promise: Promise.resolve().then(async () => {
        try {
          const value = await load();
          // Stale (invalidated meanwhile) or superseded by a load at a newer version: not stored.
          if (!flight.isStale && !isClosed && flights.get(key) === flight) {
            store(key, { owner, value, version, expiresAtMs: clock.now().getTime() + ttlMs });
          }
          return value;
        } finally {
          if (flights.get(key) === flight) flights.delete(key);
        }
      }),
    };
    flights.set(key, flight);
    return flight.promise;
  }

  return {
    get(owner: string, slot: string, load: () => Promise<V>): V | Promise<V> {
      if (isClosed) return load();
      // A synchronous version (one instance) serves a hit without a promise.
      const version = currentVersion(owner);
      if (version === undefined || typeof version === "number") return read(owner, slot, version, load);
      return version.then((current) => read(owner, slot, current, load));
    },
    getWithGuess(owner: string, slot: string, load: () => Promise<V>): Guessed<V> {
      if (isClosed) return { value: load(), hasGuess: false };
      // The version read is sent now; the guess is what `read` would serve if it comes back unchanged.
      const version = currentVersion(owner);
      if (version === undefined || typeof version === "number") return { value: read(owner, slot, version, load), hasGuess: false };
      const value = version.then((current) => read(owner, slot, current, load));
      const entry = entries.get(entryKey(owner, slot));
      return entry === undefined || !isLive(entry) ? { value, hasGuess: false } : { value, hasGuess: true, guess: entry.value };
    },
    async change<T>(owner: string, write: () => Promise<T>, changeOptions: { whenUnannounced?: WhenUnannounced } = {}): Promise<T> {
      let ticket: ChangeTicket | undefined;
      try {
        ticket = await coordinator.beginChange(owner);
      } catch (error) {
        if ((changeOptions.whenUnannounced ?? "refuse") === "refuse") throw changeRefused(error);
        onCoordinatorError(error);
      }
      dropOwner(owner);
      try {
        return await write();
      } finally {
        // Whatever was loaded while the write ran may hold the old record.
        dropOwner(owner);
        const announce = ticket === undefined ? () => coordinator.bump(owner) : () => coordinator.endChange(ticket);
        try {
          await announce();
        } catch (error) {
          onCoordinatorError(error);
          announcements.add(announce);
        }
      }
    },
    async invalidate(owner: string): Promise<void> {
      dropOwner(owner);
      await coordinator.bump(owner);
    },
    size(): number {
      return entries.size;
    },
    pendingAnnouncements: () => announcements.size(),
    async close(): Promise<void> {
      isClosed = true;
      dropAll();
      await announcements.close();
    },
  };
}

/** The change was not made: the coordinator could not announce it to the other instances. */
function changeRefused(error: unknown): DependencyUnavailableError {
  const reason = error instanceof Error ? error.message : "unknown error";
  return new DependencyUnavailableError(
    error instanceof DependencyUnavailableError ? error.dependency : "redis",
    "Key changes are paused while Keyport cannot reach Redis, which tells every instance about them; nothing was changed. Retry shortly.",
    { reason },
  );
}
