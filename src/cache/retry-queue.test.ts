import { afterEach, describe, expect, it, vi } from "vitest";
import { createRetryQueue } from "./retry-queue.js";

describe("retry queue", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("retries a failing task after waits that double up to the cap, until it succeeds, reporting the queue's size", async () => {
    vi.useFakeTimers();
    let attempts = 0;
    let failuresLeft = 4;
    const sizes: number[] = [];
    const errors: unknown[] = [];
    const queue = createRetryQueue({ baseDelayMs: 10, maxDelayMs: 40, onSizeChange: (size) => sizes.push(size), onError: (error) => errors.push(error) });
    queue.add(async () => {
      attempts += 1;
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error("still down");
      }
    });
    expect(queue.size()).toBe(1);
    // Attempts come after 10, then 20, then 40, then 40 ms (the cap).
    for (const [waitMs, expected] of [
      [9, 0],
      [1, 1],
      [19, 1],
      [1, 2],
      [39, 2],
      [1, 3],
      [40, 4],
      [40, 5],
    ] as const) {
      await vi.advanceTimersByTimeAsync(waitMs);
      expect(attempts).toBe(expected);
    }
    expect(queue.size()).toBe(0);
    expect(errors).toHaveLength(4);
    expect(sizes.at(0)).toBe(1);
    expect(sizes.at(-1)).toBe(0);
    // Nothing left: no more attempts.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toBe(5);
  });

  it("runs a round at once on retryNow, and one last round on close", async () => {
    const done: string[] = [];
    let isDown = true;
    const queue = createRetryQueue({ baseDelayMs: 600_000 });
    queue.add(async () => {
      if (isDown) throw new Error("down");
      done.push("first");
    });
    await queue.retryNow();
    expect(done).toEqual([]);
    isDown = false;
    await queue.retryNow();
    expect(done).toEqual(["first"]);
    queue.add(async () => void done.push("second"));
    await queue.close();
    expect(done).toEqual(["first", "second"]);
    expect(queue.size()).toBe(0);
  });
});
