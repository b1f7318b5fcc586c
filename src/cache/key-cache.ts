import { systemClock, type Clock } from "../lib/clock.js";
import type { CacheCoordinator } from "./cache-coordinator.js";

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
};

/**
 * A read-through cache of key records per owner and slot (the provider id), so the gateway does
 * not read the database on every call. Store records as they are in the database (sealed
 * ciphertext, never a decrypted key). Every change to an owner's keys (create, activate,
 * deactivate, rotate, status change, delete) must call `invalidate(owner)` after it commits.
 */
export type KeyCache<V> = {
  /**
   * The cached value, or `load()`'s; concurrent misses of one entry share one `load`. Not-found
   * results are cached too. A hit is returned as the value itself, not a promise, when the
   * coordinator answers synchronously (one instance): the gateway reads this on every call.
   */
  get(owner: string, slot: string, load: () => Promise<V>): V | Promise<V>;
  /**
   * Drops the owner's entries here and tells every instance. Resolves once the coordinator has
   * accepted the change: from then on no instance serves what it cached before. When it rejects,
   * other instances may serve their copy until it expires (`ttlMs`).
   */
  invalidate(owner: string): Promise<void>;
  /** Entries held. */
  size(): number;
  /** Drops everything; later reads go straight to `load`. The coordinator stays open (its creator closes it). */
  close(): Promise<void>;
};

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

  coordinator.onInvalidate((owner) => dropOwner(owner));

  /** The owner's version; a number right away when the coordinator answers synchronously (one instance). */
  function currentVersion(owner: string): number | Promise<number | undefined> | undefined {
    let version: number | Promise<number>;
    try {
      version = coordinator.version(owner);
    } catch (error) {
      onCoordinatorError(error);
      return undefined;
    }
    if (typeof version === "number") return version;
    return version.catch((error: unknown) => {
      onCoordinatorError(error);
      return undefined;
    });
  }

  function read(owner: string, slot: string, version: number | undefined, load: () => Promise<V>): V | Promise<V> {
    // Without a version nothing cached can be trusted, and nothing loaded can be labelled.
    if (version === undefined) return load();
    const key = entryKey(owner, slot);
    const entry = entries.get(key);
    if (entry !== undefined) {
      if (entry.version === version && entry.expiresAtMs > clock.now().getTime()) {
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
    async invalidate(owner: string): Promise<void> {
      dropOwner(owner);
      await coordinator.bump(owner);
    },
    size(): number {
      return entries.size;
    },
    async close(): Promise<void> {
      isClosed = true;
      for (const flight of flights.values()) flight.isStale = true;
      flights.clear();
      entries.clear();
      keysByOwner.clear();
    },
  };
}
