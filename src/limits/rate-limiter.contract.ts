import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RateLimiter } from "./ports.js";

/**
 * The behaviour every `RateLimiter` must show. `create` returns a limiter with the given points
 * per `durationSeconds` whose counters no other test shares.
 */
export function runRateLimiterContract(name: string, create: (options: { points: number; durationSeconds: number }) => Promise<RateLimiter>): void {
  describe(`${name} rate limiter contract`, () => {
    const newKey = () => `contract-${randomUUID()}`;

    it("allows exactly `points`, counting remaining down, then refuses until the window resets", async () => {
      const limiter = await create({ points: 3, durationSeconds: 60 });
      const key = newKey();
      const results = [];
      for (let index = 0; index < 5; index += 1) results.push(await limiter.consume(key));
      expect(results.map((result) => result.allowed)).toEqual([true, true, true, false, false]);
      expect(results.map((result) => result.remaining)).toEqual([2, 1, 0, 0, 0]);
      for (const result of results) {
        expect(result.limit).toBe(3);
        expect(result.resetMs).toBeGreaterThan(0);
        expect(result.resetMs).toBeLessThanOrEqual(60_000);
      }
      // The window started with the first consume: refusals do not move its end.
      const [first, , , fourth, fifth] = results;
      expect(fifth?.resetMs).toBeLessThanOrEqual(fourth?.resetMs ?? 0);
      expect(fourth?.resetMs).toBeLessThanOrEqual(first?.resetMs ?? 0);
    });

    it("keeps keys apart", async () => {
      const limiter = await create({ points: 1, durationSeconds: 60 });
      const [one, other] = [newKey(), newKey()];
      expect((await limiter.consume(one)).allowed).toBe(true);
      expect((await limiter.consume(one)).allowed).toBe(false);
      expect((await limiter.consume(other)).allowed).toBe(true);
    });

    it("allows exactly `points` of 30 concurrent consumes", async () => {
      const limiter = await create({ points: 10, durationSeconds: 60 });
      const key = newKey();
      const results = await Promise.all(Array.from({ length: 30 }, () => limiter.consume(key)));
      expect(results.filter((result) => result.allowed)).toHaveLength(10);
    });

    it("allows again once the window is over", async () => {
      const limiter = await create({ points: 1, durationSeconds: 1 });
      const key = newKey();
      expect((await limiter.consume(key)).allowed).toBe(true);
      const refused = await limiter.consume(key);
      expect(refused.allowed).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, refused.resetMs + 50));
      expect((await limiter.consume(key)).allowed).toBe(true);
    });
  });
}
