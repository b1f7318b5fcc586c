import { describe, expect, it, vi } from "vitest";
import { createRetryQueue } from "./retry-queue.js";

describe("retry queue", () => {
  it("retries a failing task with growing waits until it succeeds, reporting the queue's size", async () => {
    const attemptsAt: number[] = [];
    let failuresLeft = 3;
    const sizes: number[] = [];
    const errors: unknown[] = [];
    const queue = createRetryQueue({ baseDelayMs: 10, maxDelayMs: 40, onSizeChange: (size) => sizes.push(size), onError: (error) => errors.push(error) });
    queue.add(async () => {
      attemptsAt.push(performance.now());
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error("still down");
      }
    });
    expect(queue.size()).toBe(1);
    await vi.waitFor(() => expect(queue.size()).toBe(0), { timeout: 2_000, interval: 5 });
    expect(attemptsAt).toHaveLength(4);
    expect(errors).toHaveLength(3);
    // 10, 20, 40 ms apart at least: the wait doubles, up to the cap.
    const gaps = attemptsAt.slice(1).map((at, index) => at - (attemptsAt[index] ?? 0));
    expect(gaps[2]).toBeGreaterThanOrEqual(gaps[0] ?? 0);
    expect(sizes.at(0)).toBe(1);
    expect(sizes.at(-1)).toBe(0);
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
