import { afterEach, describe, expect, it, vi } from "vitest";
import { newId } from "../lib/ids.js";
import type { UsageRecord } from "../store/ports.js";
import { createSqliteStore } from "../store/sqlite/create-sqlite-store.js";
import { MAX_TEXT_LENGTH } from "./usage-record-check.js";
import { createUsageRecorder } from "./usage-recorder.js";
import type { UsageRecorder } from "./usage-recorder.js";

function newRecord(overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: newId("use"),
    owner: "user:u1",
    keyId: null,
    source: "platform",
    tier: "free",
    provider: "openai",
    endpoint: "chat/completions",
    model: "gpt-4o-mini",
    inputTokens: 10,
    outputTokens: 5,
    cachedInputTokens: null,
    cacheWriteTokens: null,
    costNanoUsd: 4_500,
    prices: { inputNanoUsdPerMTok: 150_000_000, outputNanoUsdPerMTok: 600_000_000, cachedInputNanoUsdPerMTok: 75_000_000, cacheWriteNanoUsdPerMTok: 150_000_000 },
    status: "ok",
    httpStatus: 200,
    latencyMs: 120,
    ttfbMs: 40,
    streamed: false,
    requestId: newId("req"),
    createdAt: "2025-01-01T00:00:00.000Z",
    ...overrides,
  };
}

/**
 * An in-memory repo that behaves like the store contract (ids already stored are ignored) and
 * can be told to fail: `before` fails without writing, `after` writes and then fails, as a
 * commit whose acknowledgement was lost.
 */
function createFakeRepo() {
  const rows = new Map<string, UsageRecord>();
  const calls: number[] = [];
  const failures: Array<"before" | "after"> = [];
  let gate: Promise<void> | undefined;
  return {
    rows,
    calls,
    failNext(...modes: Array<"before" | "after">): void {
      failures.push(...modes);
    },
    /** Holds every insert until the returned function is called. */
    hold(): () => void {
      let release = (): void => undefined;
      gate = new Promise((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
      return release;
    },
    async insertBatch(records: readonly UsageRecord[]): Promise<void> {
      calls.push(records.length);
      if (gate !== undefined) await gate;
      const failure = failures.shift();
      if (failure === "before") throw new Error("database unavailable");
      for (const record of records) if (!rows.has(record.id)) rows.set(record.id, record);
      if (failure === "after") throw new Error("connection reset before commit acknowledgement");
    },
  };
}

function createLogger() {
  return { warn: vi.fn(), error: vi.fn() };
}

const recorders: UsageRecorder[] = [];
/** A recorder closed after the test, so no timer outlives it. */
function track(recorder: UsageRecorder): UsageRecorder {
  recorders.push(recorder);
  return recorder;
}

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await Promise.allSettled(recorders.splice(0).map((recorder) => recorder.close()));
});

describe("usage recorder", () => {
  it("returns from record before anything is written, then writes in batches of batchSize", async () => {
    const repo = createFakeRepo();
    const recorder = track(createUsageRecorder({ usage: repo, batchSize: 3 }));
    const records = Array.from({ length: 7 }, () => newRecord());
    for (const record of records) recorder.record(record);
    expect(repo.calls).toEqual([]);
    expect(recorder.stats()).toEqual({ queued: 7, written: 0, dropped: 0, failedBatches: 0 });

    await recorder.flush();
    expect(repo.calls).toEqual([3, 3, 1]);
    expect([...repo.rows.keys()]).toEqual(records.map((record) => record.id));
    expect(recorder.stats()).toEqual({ queued: 0, written: 7, dropped: 0, failedBatches: 0 });
  });

  it("writes a full batch at once, without waiting for its timer", async () => {
    const repo = createFakeRepo();
    const recorder = track(createUsageRecorder({ usage: repo, batchSize: 2, flushIntervalMs: 60_000 }));
    recorder.record(newRecord());
    await new Promise((resolve) => setImmediate(resolve));
    expect(repo.calls).toEqual([]);
    recorder.record(newRecord());
    expect(repo.calls).toEqual([]);
    await vi.waitFor(() => expect(repo.calls).toEqual([2]));
    expect(recorder.stats()).toEqual({ queued: 0, written: 2, dropped: 0, failedBatches: 0 });
  });

  it("writes the full batches at once and leaves a remainder for its timer, so small batches stay rare", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    const recorder = track(createUsageRecorder({ usage: repo, batchSize: 2, flushIntervalMs: 1_000 }));
    for (let index = 0; index < 5; index += 1) recorder.record(newRecord());
    await vi.advanceTimersByTimeAsync(0);
    expect(repo.calls).toEqual([2, 2]);
    expect(recorder.stats()).toMatchObject({ queued: 1, written: 4 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(repo.calls).toEqual([2, 2, 1]);
    expect(recorder.stats()).toMatchObject({ queued: 0, written: 5 });
  });

  it("writes queued records on its timer", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    const recorder = track(createUsageRecorder({ usage: repo, flushIntervalMs: 1_000 }));
    recorder.record(newRecord());
    recorder.record(newRecord());
    await vi.advanceTimersByTimeAsync(999);
    expect(repo.rows.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(repo.rows.size).toBe(2);
    expect(recorder.stats().written).toBe(2);
  });

  it("uses an unref'd timer, so it never keeps the process alive", async () => {
    const intervals: NodeJS.Timeout[] = [];
    const realSetInterval = globalThis.setInterval;
    vi.spyOn(globalThis, "setInterval").mockImplementation(((callback: () => void, ms?: number) => {
      const timer = realSetInterval(callback, ms);
      intervals.push(timer);
      return timer;
    }) as typeof setInterval);
    const recorder = track(createUsageRecorder({ usage: createFakeRepo() }));
    expect(intervals).toHaveLength(1);
    expect(intervals[0]?.hasRef()).toBe(false);
    await recorder.close();
  });

  it("writes everything on close, refuses records afterwards, and closes once", async () => {
    const repo = createFakeRepo();
    const recorder = createUsageRecorder({ usage: repo, batchSize: 2, flushIntervalMs: 60_000 });
    for (let index = 0; index < 5; index += 1) recorder.record(newRecord());
    await recorder.close();
    expect(repo.rows.size).toBe(5);
    recorder.record(newRecord());
    await recorder.close();
    expect(repo.rows.size).toBe(5);
    expect(recorder.stats()).toEqual({ queued: 0, written: 5, dropped: 1, failedBatches: 0 });
  });

  it("puts a failed batch back in front and retries it, losing and duplicating nothing", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    const logger = createLogger();
    const recorder = track(createUsageRecorder({ usage: repo, logger, batchSize: 2, flushIntervalMs: 100 }));
    const first = [newRecord(), newRecord(), newRecord()];
    for (const record of first) recorder.record(record);
    // The first attempt fails cleanly; the second commits but its acknowledgement is lost.
    repo.failNext("before", "after");

    await expect(recorder.flush()).rejects.toThrow("database unavailable");
    expect(recorder.stats()).toEqual({ queued: 3, written: 0, dropped: 0, failedBatches: 1 });
    const later = newRecord();
    recorder.record(later);

    await vi.advanceTimersByTimeAsync(60_000);
    expect(recorder.stats()).toEqual({ queued: 0, written: 4, dropped: 0, failedBatches: 2 });
    expect([...repo.rows.keys()]).toEqual([...first, later].map((record) => record.id));
    expect(repo.calls).toEqual([2, 2, 2, 2]);
    expect(logger.error).toHaveBeenCalledTimes(2);
    expect(logger.error.mock.calls[0]?.[0]).toMatchObject({ records: 2, error: { message: "database unavailable" } });
  });

  it("backs off while the store keeps failing instead of retrying on every tick", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    repo.failNext(...Array.from({ length: 100 }, () => "before" as const));
    const recorder = track(createUsageRecorder({ usage: repo, flushIntervalMs: 100, closeAttempts: 1 }));
    recorder.record(newRecord());
    await vi.advanceTimersByTimeAsync(10_000);
    // 100 ticks passed; with doubling delays from 100 ms only a handful of attempts fit.
    expect(repo.calls.length).toBeGreaterThanOrEqual(3);
    expect(repo.calls.length).toBeLessThanOrEqual(8);
    expect(recorder.stats().queued).toBe(1);
  });

  it("retries on close until the store takes the records", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    const recorder = createUsageRecorder({ usage: repo, flushIntervalMs: 60_000 });
    for (let index = 0; index < 3; index += 1) recorder.record(newRecord());
    repo.failNext("before", "after", "before");
    const closing = recorder.close();
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(closing).resolves.toBeUndefined();
    expect(repo.rows.size).toBe(3);
    expect(recorder.stats()).toEqual({ queued: 0, written: 3, dropped: 0, failedBatches: 3 });
  });

  it("rejects close after its last attempt, reporting how many records were not written", async () => {
    vi.useFakeTimers();
    const repo = createFakeRepo();
    repo.failNext("before", "before", "before");
    const logger = createLogger();
    const recorder = createUsageRecorder({ usage: repo, logger, closeAttempts: 3 });
    recorder.record(newRecord());
    recorder.record(newRecord());
    const closing = recorder.close().then(
      () => undefined,
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await closing).toMatchObject({ code: "unavailable", internal: { unwritten: 2, attempts: 3 } });
    expect(repo.calls).toEqual([2, 2, 2]);
    expect(logger.error).toHaveBeenLastCalledWith({ unwritten: 2, attempts: 3 }, expect.any(String));
  });

  it("drops and counts records once the queue is full, warning once, and accepts again when there is room", async () => {
    const repo = createFakeRepo();
    const release = repo.hold();
    const logger = createLogger();
    const recorder = track(createUsageRecorder({ usage: repo, logger, batchSize: 2, maxQueue: 3 }));
    for (let index = 0; index < 3; index += 1) recorder.record(newRecord());
    const flushing = recorder.flush();
    // Two records are being written and one waits: the batch in flight still takes room.
    for (let index = 0; index < 4; index += 1) recorder.record(newRecord());
    expect(recorder.stats()).toEqual({ queued: 3, written: 0, dropped: 4, failedBatches: 0 });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledWith({ reason: "full", dropped: 1, maxQueue: 3 }, expect.any(String));

    release();
    await flushing;
    recorder.record(newRecord());
    await recorder.flush();
    expect(recorder.stats()).toEqual({ queued: 0, written: 4, dropped: 4, failedBatches: 0 });
  });

  it("joins a write in progress instead of starting a second writer", async () => {
    const repo = createFakeRepo();
    const release = repo.hold();
    const recorder = track(createUsageRecorder({ usage: repo, batchSize: 10 }));
    recorder.record(newRecord());
    const first = recorder.flush();
    recorder.record(newRecord());
    const second = recorder.flush();
    expect(repo.calls).toEqual([1]);
    release();
    await Promise.all([first, second]);
    expect(repo.calls).toEqual([1, 1]);
    expect(repo.rows.size).toBe(2);
  });

  it("refuses records the store could never take, and cleans text it could not hold", async () => {
    const repo = createFakeRepo();
    const logger = createLogger();
    const recorder = track(createUsageRecorder({ usage: repo, logger }));
    recorder.record(newRecord({ createdAt: "yesterday" }));
    recorder.record(newRecord({ owner: "" }));
    recorder.record(newRecord({ status: "done" as UsageRecord["status"] }));
    recorder.record(newRecord({ latencyMs: -1 }));
    const kept = newRecord({
      model: `gpt\u0000-4o${"x".repeat(400)}`,
      inputTokens: 1.5,
      costNanoUsd: Number.NaN,
      prices: { inputNanoUsdPerMTok: -1, outputNanoUsdPerMTok: 0, cachedInputNanoUsdPerMTok: 0, cacheWriteNanoUsdPerMTok: 0 },
    });
    recorder.record(kept);
    await recorder.flush();

    expect(recorder.stats()).toMatchObject({ written: 1, dropped: 4 });
    expect(logger.error).toHaveBeenCalledWith(expect.objectContaining({ reason: "invalid createdAt" }), expect.any(String));
    const stored = repo.rows.get(kept.id);
    expect(stored?.model).toHaveLength(MAX_TEXT_LENGTH);
    expect(stored?.model.startsWith("gpt-4oxxx")).toBe(true);
    expect(stored).toMatchObject({ inputTokens: null, outputTokens: 5, costNanoUsd: null, prices: null });
  });

  it("keeps what was recorded even when the caller changes its object afterwards", async () => {
    const repo = createFakeRepo();
    const recorder = track(createUsageRecorder({ usage: repo }));
    const record = newRecord();
    recorder.record(record);
    record.costNanoUsd = 999;
    await recorder.flush();
    expect(repo.rows.get(record.id)?.costNanoUsd).toBe(4_500);
  });

  it("never throws from record, even when the logger does", () => {
    const logger = {
      warn: () => {
        throw new Error("log sink down");
      },
      error: () => {
        throw new Error("log sink down");
      },
    };
    const recorder = track(createUsageRecorder({ usage: createFakeRepo(), logger, maxQueue: 1 }));
    expect(() => {
      recorder.record(newRecord());
      recorder.record(newRecord());
      recorder.record(newRecord({ createdAt: "bad" }));
      recorder.record(null as unknown as UsageRecord);
    }).not.toThrow();
    expect(recorder.stats()).toMatchObject({ queued: 1, dropped: 3 });
  });

  it("refuses options that are not positive integers", () => {
    const usage = createFakeRepo();
    expect(() => createUsageRecorder({ usage, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => createUsageRecorder({ usage, flushIntervalMs: 1.5 })).toThrow(/flushIntervalMs/);
    expect(() => createUsageRecorder({ usage, maxQueue: Number.POSITIVE_INFINITY })).toThrow(/maxQueue/);
  });

  it("writes through a real store once, with key totals, when records are retried", async () => {
    const store = await createSqliteStore({ path: ":memory:" });
    try {
      const owner = "user:u1";
      const keyId = newId("key");
      const createdAt = "2025-01-01T00:00:00.000Z";
      const key = { id: keyId, owner, provider: "openai", label: "Main", keyHint: "****...abc1", fingerprint: "fp", ciphertext: "ct" } as const;
      await store.keys.insert(
        { ...key, status: "valid", statusDetail: null, monthlyLimitNanoUsd: null, createdAt, lastTestedAt: null },
        { activate: true, at: createdAt },
      );
      const recorder = createUsageRecorder({ usage: store.usage, batchSize: 50 });
      const records = Array.from({ length: 120 }, () => newRecord({ owner, keyId, source: "byok" }));
      for (const record of records) recorder.record(record);
      // The same records again, as a retry after a lost acknowledgement would send them.
      for (const record of records.slice(0, 30)) recorder.record(record);
      await recorder.close();
      expect(await store.usage.count()).toBe(120);
      expect(await store.keys.findById(owner, keyId)).toMatchObject({ totalRequests: 120, totalTokens: 120 * 15, costNanoUsd: 120 * 4_500 });
    } finally {
      await store.close();
    }
  });
});
