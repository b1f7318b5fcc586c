import { describe, expect, it, vi } from "vitest";
import type { Clock } from "../lib/clock.js";
import { DependencyUnavailableError } from "../lib/errors.js";
import type { CacheCoordinator } from "./cache-coordinator.js";
import { createKeyCache } from "./key-cache.js";
import { createMemoryCacheCoordinator } from "./memory-coordinator.js";

function manualClock(startMs = Date.parse("2025-03-10T12:00:00.000Z")): Clock & { advance(milliseconds: number): void } {
  let nowMs = startMs;
  return {
    now: () => new Date(nowMs),
    advance: (milliseconds) => {
      nowMs += milliseconds;
    },
  };
}

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  return { promise, resolve, reject };
}

/** A coordinator that does nothing, with `overrides` in place. */
function fakeCoordinator(overrides: Partial<CacheCoordinator> = {}): CacheCoordinator {
  return {
    version: () => 0,
    beginChange: async (owner) => ({ owner, id: "change" }),
    endChange: async () => {},
    bump: async () => {},
    onInvalidate: () => {},
    onInvalidateAll: () => {},
    close: async () => {},
    ...overrides,
  };
}

/** A loader that counts its calls and answers with `value-<n>`. */
function countingLoader(prefix = "value") {
  const load = vi.fn(async () => `${prefix}-${load.mock.calls.length}`);
  return load;
}

function newCache(options: { maxEntries?: number; ttlMs?: number; coordinator?: CacheCoordinator; clock?: Clock } = {}) {
  const coordinator = options.coordinator ?? createMemoryCacheCoordinator();
  const clock = options.clock ?? manualClock();
  return createKeyCache<string>({ maxEntries: options.maxEntries ?? 100, ttlMs: options.ttlMs ?? 60_000, coordinator, clock });
}

describe("key cache", () => {
  it("loads on a miss and serves the next reads from memory", async () => {
    const cache = newCache();
    const load = countingLoader();
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    expect(load).toHaveBeenCalledTimes(1);
    expect(cache.size()).toBe(1);
  });

  it("returns a hit as the value itself when the coordinator answers synchronously, and a miss as a promise", async () => {
    const cache = newCache();
    const load = countingLoader();
    const miss = cache.get("user:a", "openai", load);
    expect(miss).toBeInstanceOf(Promise);
    await miss;
    expect(cache.get("user:a", "openai", load)).toBe("value-1");
  });

  it("keeps owners and slots apart", async () => {
    const cache = newCache();
    expect(await cache.get("user:a", "openai", async () => "a-openai")).toBe("a-openai");
    expect(await cache.get("user:a", "anthropic", async () => "a-anthropic")).toBe("a-anthropic");
    expect(await cache.get("user:b", "openai", async () => "b-openai")).toBe("b-openai");
    // Keys that would collide if owner and slot were simply joined.
    expect(await cache.get("user:a:x", "y", async () => "first")).toBe("first");
    expect(await cache.get("user:a", "x:y", async () => "second")).toBe("second");
    expect(cache.size()).toBe(5);
  });

  it("caches a not-found result too", async () => {
    const cache = createKeyCache<string | undefined>({ maxEntries: 10, ttlMs: 1_000, coordinator: createMemoryCacheCoordinator() });
    const load = vi.fn(async () => undefined);
    expect(await cache.get("user:a", "openai", load)).toBeUndefined();
    expect(await cache.get("user:a", "openai", load)).toBeUndefined();
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("shares one load among concurrent misses of one entry", async () => {
    const cache = newCache();
    const pending = deferred<string>();
    const load = vi.fn(() => pending.promise);
    const reads = Array.from({ length: 5 }, () => cache.get("user:a", "openai", load));
    pending.resolve("shared");
    expect(await Promise.all(reads)).toEqual(Array<string>(5).fill("shared"));
    expect(load).toHaveBeenCalledTimes(1);
  });

  it("does not cache a failed load; the waiting reads all see the failure", async () => {
    const cache = newCache();
    const pending = deferred<string>();
    const reads = [cache.get("user:a", "openai", () => pending.promise), cache.get("user:a", "openai", () => pending.promise)];
    pending.reject(new Error("database down"));
    for (const read of reads) await expect(read).rejects.toThrow("database down");
    expect(cache.size()).toBe(0);
    expect(await cache.get("user:a", "openai", async () => "recovered")).toBe("recovered");
  });

  it("survives a load that throws instead of rejecting", async () => {
    const cache = newCache();
    const throwing = () => {
      throw new Error("bug in loader");
    };
    await expect(cache.get("user:a", "openai", throwing)).rejects.toThrow("bug in loader");
    expect(await cache.get("user:a", "openai", async () => "next")).toBe("next");
  });

  it("expires entries ttlMs after they were loaded", async () => {
    const clock = manualClock();
    const cache = newCache({ clock, ttlMs: 1_000 });
    const load = countingLoader();
    await cache.get("user:a", "openai", load);
    clock.advance(999);
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    clock.advance(1);
    expect(await cache.get("user:a", "openai", load)).toBe("value-2");
    expect(load).toHaveBeenCalledTimes(2);
  });

  it("holds at most maxEntries, dropping the least recently read", async () => {
    const cache = newCache({ maxEntries: 2 });
    const load = countingLoader();
    await cache.get("user:a", "openai", load); // value-1
    await cache.get("user:b", "openai", load); // value-2
    await cache.get("user:a", "openai", load); // a is now the most recent
    await cache.get("user:c", "openai", load); // value-3, evicts b
    expect(cache.size()).toBe(2);
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    expect(await cache.get("user:b", "openai", load)).toBe("value-4");
  });

  it("invalidate drops every slot of that owner and nobody else's", async () => {
    const cache = newCache();
    await cache.get("user:a", "openai", async () => "a-openai");
    await cache.get("user:a", "anthropic", async () => "a-anthropic");
    await cache.get("user:b", "openai", async () => "b-openai");
    await cache.invalidate("user:a");
    expect(cache.size()).toBe(1);
    expect(await cache.get("user:a", "openai", async () => "a-openai-new")).toBe("a-openai-new");
    expect(await cache.get("user:b", "openai", async () => "b-openai-new")).toBe("b-openai");
  });

  // Twice: with versions, and with a coordinator whose version never moves, so the local
  // bookkeeping is tested on its own and not only behind the version check.
  const frozenVersion: () => CacheCoordinator = () => fakeCoordinator();
  it.each([
    ["a versioned coordinator", createMemoryCacheCoordinator],
    ["a coordinator whose version never moves", frozenVersion],
  ])("does not store a load that raced with an invalidate, nor let later reads join it (%s)", async (_name, coordinator) => {
    const cache = newCache({ coordinator: coordinator() });
    const stale = deferred<string>();
    const started = deferred<void>();
    const before = cache.get("user:a", "openai", () => {
      started.resolve();
      return stale.promise;
    });
    await started.promise; // the load is reading the old record
    await cache.invalidate("user:a");
    // A read after the invalidation starts its own load instead of waiting for the old one.
    const fresh = vi.fn(async () => "fresh");
    const after = cache.get("user:a", "openai", fresh);
    stale.resolve("stale");
    expect(await before).toBe("stale"); // it began before the change: it may see the old record
    expect(await after).toBe("fresh");
    expect(fresh).toHaveBeenCalledTimes(1);
    expect(await cache.get("user:a", "openai", async () => "unexpected")).toBe("fresh");
  });

  it("reloads when another instance bumped the version, even without an invalidation message", async () => {
    const shared = createMemoryCacheCoordinator();
    // Versions shared, messages lost: only the version check stands between us and a stale key.
    const deaf = fakeCoordinator({ version: (owner) => shared.version(owner), bump: (owner) => shared.bump(owner) });
    const instanceA = newCache({ coordinator: deaf });
    const instanceB = newCache({ coordinator: deaf });
    const load = countingLoader();
    expect(await instanceB.get("user:a", "openai", load)).toBe("value-1");
    await instanceA.invalidate("user:a");
    expect(instanceB.size()).toBe(1);
    expect(await instanceB.get("user:a", "openai", load)).toBe("value-2");
  });

  it("drops entries when the coordinator announces another instance's change", async () => {
    const shared = createMemoryCacheCoordinator();
    const instanceA = newCache({ coordinator: shared });
    const instanceB = newCache({ coordinator: shared });
    await instanceB.get("user:a", "openai", async () => "old");
    await instanceA.invalidate("user:a");
    expect(instanceB.size()).toBe(0);
  });

  it("goes to the loader and caches nothing while the coordinator cannot answer", async () => {
    const errors: unknown[] = [];
    const failing = fakeCoordinator({
      version: async () => {
        throw new Error("redis down");
      },
      bump: async () => {
        throw new Error("redis down");
      },
    });
    const cache = createKeyCache<string>({ maxEntries: 10, ttlMs: 1_000, coordinator: failing, onCoordinatorError: (error) => errors.push(error) });
    const load = countingLoader();
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    expect(await cache.get("user:a", "openai", load)).toBe("value-2");
    expect(cache.size()).toBe(0);
    expect(errors).toHaveLength(2);
  });

  it("rejects invalidate when the coordinator does not accept the change, having dropped local entries", async () => {
    const shared = createMemoryCacheCoordinator();
    const refusing: CacheCoordinator = { ...shared, version: (owner) => shared.version(owner), bump: async () => Promise.reject(new Error("redis down")) };
    const cache = newCache({ coordinator: refusing });
    await cache.get("user:a", "openai", async () => "old");
    await expect(cache.invalidate("user:a")).rejects.toThrow("redis down");
    expect(cache.size()).toBe(0);
  });

  it("serves nothing cached and stores nothing loaded while the coordinator says the owner is changing", async () => {
    let isChanging = false;
    const cache = newCache({ coordinator: fakeCoordinator({ version: () => (isChanging ? undefined : 7) }) });
    const load = countingLoader();
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    isChanging = true;
    expect(await cache.get("user:a", "openai", load)).toBe("value-2");
    expect(await cache.get("user:a", "openai", load)).toBe("value-3");
    isChanging = false;
    // The entry from before the change is still at version 7 here only because this fake never
    // moves it; what matters is that nothing loaded meanwhile was stored.
    expect(await cache.get("user:a", "openai", load)).toBe("value-1");
    expect(load).toHaveBeenCalledTimes(3);
  });

  it("drops every entry and load in flight when the coordinator may have missed invalidations", async () => {
    let invalidateAll: () => void = () => {};
    const cache = newCache({ coordinator: fakeCoordinator({ onInvalidateAll: (handler) => (invalidateAll = handler) }) });
    await cache.get("user:a", "openai", async () => "a");
    await cache.get("user:b", "openai", async () => "b");
    const stale = deferred<string>();
    const started = deferred<void>();
    const inFlight = cache.get("user:c", "openai", () => {
      started.resolve();
      return stale.promise;
    });
    await started.promise;
    invalidateAll();
    expect(cache.size()).toBe(0);
    stale.resolve("loaded before the gap");
    expect(await inFlight).toBe("loaded before the gap");
    expect(await cache.get("user:c", "openai", async () => "fresh")).toBe("fresh");
  });

  describe("change", () => {
    it("announces before the write and ends the change after it, dropping what was cached", async () => {
      const steps: string[] = [];
      const coordinator = fakeCoordinator({
        beginChange: async (owner) => {
          steps.push(`begin ${owner}`);
          return { owner, id: "c1" };
        },
        endChange: async (ticket) => {
          steps.push(`end ${ticket.owner} ${ticket.id}`);
        },
      });
      const cache = newCache({ coordinator });
      await cache.get("user:a", "openai", async () => "old");
      const result = await cache.change("user:a", async () => {
        steps.push("write");
        return "written";
      });
      expect(result).toBe("written");
      expect(steps).toEqual(["begin user:a", "write", "end user:a c1"]);
      expect(cache.size()).toBe(0);
    });

    it("ends the change also when the write fails, and passes the failure on", async () => {
      const ended: string[] = [];
      const cache = newCache({ coordinator: fakeCoordinator({ endChange: async (ticket) => void ended.push(ticket.id) }) });
      await expect(cache.change("user:a", async () => Promise.reject(new Error("constraint")))).rejects.toThrow("constraint");
      expect(ended).toEqual(["change"]);
    });

    it("refuses the change, writing nothing, when it cannot be announced first", async () => {
      const cache = newCache({ coordinator: fakeCoordinator({ beginChange: async () => Promise.reject(new Error("redis down")) }) });
      const write = vi.fn(async () => "written");
      const failure = await cache.change("user:a", write).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(DependencyUnavailableError);
      expect(failure).toMatchObject({ code: "unavailable", status: 503, dependency: "redis", headers: { "retry-after": "5" } });
      expect(write).not.toHaveBeenCalled();
    });

    it("with whenUnannounced=proceed, writes anyway and bumps the version once the coordinator answers", async () => {
      let isDown = true;
      const bumped: string[] = [];
      const coordinator = fakeCoordinator({
        beginChange: async () => Promise.reject(new Error("redis down")),
        bump: async (owner) => {
          if (isDown) throw new Error("redis down");
          bumped.push(owner);
        },
      });
      const pending: number[] = [];
      const cache = createKeyCache<string>({ coordinator, retry: { baseDelayMs: 5, maxDelayMs: 5 }, onPendingAnnouncements: (count) => pending.push(count) });
      expect(await cache.change("user:a", async () => "written", { whenUnannounced: "proceed" })).toBe("written");
      expect(cache.pendingAnnouncements()).toBe(1);
      isDown = false;
      await vi.waitFor(() => expect(bumped).toEqual(["user:a"]), { timeout: 2_000, interval: 5 });
      expect(cache.pendingAnnouncements()).toBe(0);
      expect(pending).toEqual([1, 0]);
    });

    it("resolves a committed change even when ending it fails, and retries the end until it is made", async () => {
      let failures = 3;
      const ended: string[] = [];
      const coordinator = fakeCoordinator({
        beginChange: async (owner) => ({ owner, id: "c7" }),
        endChange: async (ticket) => {
          if (failures > 0) {
            failures -= 1;
            throw new Error("redis down");
          }
          ended.push(ticket.id);
        },
      });
      const errors: unknown[] = [];
      const cache = createKeyCache<string>({ coordinator, retry: { baseDelayMs: 5, maxDelayMs: 20 }, onCoordinatorError: (error) => errors.push(error) });
      expect(await cache.change("user:a", async () => "committed")).toBe("committed");
      await vi.waitFor(() => expect(ended).toEqual(["c7"]), { timeout: 2_000, interval: 5 });
      expect(errors).toHaveLength(3);
      expect(cache.pendingAnnouncements()).toBe(0);
    });

    it("retries pending announcements at once when the coordinator's link comes back", async () => {
      let invalidateAll: () => void = () => {};
      let isDown = true;
      const ended: string[] = [];
      const coordinator = fakeCoordinator({
        onInvalidateAll: (handler) => (invalidateAll = handler),
        endChange: async (ticket) => {
          if (isDown) throw new Error("redis down");
          ended.push(ticket.id);
        },
      });
      // A retry delay far beyond the test's patience: only the link coming back can explain the end.
      const cache = createKeyCache<string>({ coordinator, retry: { baseDelayMs: 600_000, maxDelayMs: 600_000 } });
      await cache.change("user:a", async () => "committed");
      isDown = false;
      invalidateAll();
      await vi.waitFor(() => expect(ended).toEqual(["change"]), { timeout: 2_000, interval: 5 });
      await cache.close();
    });
  });

  describe("getWithGuess", () => {
    /** A coordinator that answers like Redis (a promise), with the version the test sets, counting reads. */
    function asyncCoordinator() {
      const state = { version: 1, reads: 0, failure: undefined as Error | undefined };
      const coordinator = fakeCoordinator({
        version: async () => {
          state.reads += 1;
          if (state.failure !== undefined) throw state.failure;
          return state.version;
        },
      });
      return { state, coordinator };
    }

    it("guesses the held entry before its version is read, and confirms it with that very value", async () => {
      const { state, coordinator } = asyncCoordinator();
      const cache = newCache({ coordinator });
      const load = countingLoader();
      await cache.get("user:a", "openai", load);
      const reads = state.reads;
      const found = cache.getWithGuess("user:a", "openai", load);
      // The version read was sent at once; the guess did not wait for it.
      expect(state.reads).toBe(reads + 1);
      expect(found).toMatchObject({ hasGuess: true, guess: "value-1" });
      expect(await found.value).toBe("value-1");
      expect(load).toHaveBeenCalledTimes(1);
    });

    it("guesses the held entry, then gives the reloaded value when the version moved on another instance", async () => {
      const { state, coordinator } = asyncCoordinator();
      const cache = newCache({ coordinator });
      const load = countingLoader();
      await cache.get("user:a", "openai", load);
      state.version = 2;
      const found = cache.getWithGuess("user:a", "openai", load);
      expect(found).toMatchObject({ hasGuess: true, guess: "value-1" });
      expect(await found.value).toBe("value-2");
      // The reload is cached at the new version: the next guess is the new value.
      expect(cache.getWithGuess("user:a", "openai", load)).toMatchObject({ hasGuess: true, guess: "value-2" });
    });

    it("gives the database's value, cached nowhere, when the version cannot be read, whatever it guessed", async () => {
      const { state, coordinator } = asyncCoordinator();
      const errors: unknown[] = [];
      const cache = createKeyCache<string>({ coordinator, clock: manualClock(), onCoordinatorError: (error) => errors.push(error) });
      const load = countingLoader();
      await cache.get("user:a", "openai", load);
      state.failure = new Error("redis down");
      const found = cache.getWithGuess("user:a", "openai", load);
      expect(found).toMatchObject({ hasGuess: true, guess: "value-1" });
      expect(await found.value).toBe("value-2");
      expect(errors).toEqual([state.failure]);
    });

    it("guesses nothing without a live entry: none yet, or one past its lifetime", async () => {
      const { coordinator } = asyncCoordinator();
      const clock = manualClock();
      const cache = newCache({ coordinator, clock, ttlMs: 1_000 });
      const load = countingLoader();
      const miss = cache.getWithGuess("user:a", "openai", load);
      expect(miss.hasGuess).toBe(false);
      expect(await miss.value).toBe("value-1");
      clock.advance(1_001);
      const expired = cache.getWithGuess("user:a", "openai", load);
      expect(expired.hasGuess).toBe(false);
      expect(await expired.value).toBe("value-2");
    });

    it("guesses nothing when the coordinator answers synchronously: the value is already confirmed", async () => {
      const cache = newCache();
      const load = countingLoader();
      await cache.get("user:a", "openai", load);
      expect(cache.getWithGuess("user:a", "openai", load)).toEqual({ value: "value-1", hasGuess: false });
    });
  });

  it("after close, holds nothing and passes reads through to the loader", async () => {
    const cache = newCache();
    const load = countingLoader();
    await cache.get("user:a", "openai", load);
    await cache.close();
    expect(cache.size()).toBe(0);
    expect(await cache.get("user:a", "openai", load)).toBe("value-2");
    expect(await cache.get("user:a", "openai", load)).toBe("value-3");
    expect(cache.size()).toBe(0);
  });

  it("refuses unusable options", () => {
    const coordinator = createMemoryCacheCoordinator();
    expect(() => createKeyCache({ maxEntries: 0, ttlMs: 1_000, coordinator })).toThrow(/maxEntries/);
    expect(() => createKeyCache({ maxEntries: 10, ttlMs: 0, coordinator })).toThrow(/ttlMs/);
    expect(() => createKeyCache({ maxEntries: 10, ttlMs: Number.NaN, coordinator })).toThrow(/ttlMs/);
  });
});

describe("memory cache coordinator", () => {
  it("starts owners at 0 and moves only the bumped owner's version", async () => {
    const coordinator = createMemoryCacheCoordinator();
    expect(coordinator.version("user:a")).toBe(0);
    await coordinator.bump("user:a");
    expect(coordinator.version("user:a")).toBeGreaterThan(0);
    expect(coordinator.version("user:b")).toBe(0);
  });

  it("announces every bump to every handler until closed", async () => {
    const coordinator = createMemoryCacheCoordinator();
    const seen: string[] = [];
    coordinator.onInvalidate((owner) => seen.push(`first:${owner}`));
    coordinator.onInvalidate((owner) => seen.push(`second:${owner}`));
    await coordinator.bump("user:a");
    await coordinator.close();
    await coordinator.bump("user:b");
    expect(seen).toEqual(["first:user:a", "second:user:a"]);
  });

  it("stays bounded without ever handing a forgotten owner a version it had before", async () => {
    const coordinator = createMemoryCacheCoordinator({ maxOwners: 2 });
    const seenByA = [coordinator.version("user:a")];
    await coordinator.bump("user:a");
    seenByA.push(coordinator.version("user:a"));
    await coordinator.bump("user:b");
    await coordinator.bump("user:c"); // forgets a
    const afterForgetting = coordinator.version("user:a");
    // Unchanged since a's last bump may look the same; it must never look like an older state.
    expect(afterForgetting).toBeGreaterThanOrEqual(seenByA[1] ?? Number.POSITIVE_INFINITY);
    expect(seenByA.slice(0, 1)).not.toContain(afterForgetting);
    await coordinator.bump("user:a");
    expect([...seenByA, afterForgetting]).not.toContain(coordinator.version("user:a"));
  });

  it("refuses a maxOwners that is not a positive integer", () => {
    expect(() => createMemoryCacheCoordinator({ maxOwners: 0 })).toThrow(/maxOwners/);
  });
});
