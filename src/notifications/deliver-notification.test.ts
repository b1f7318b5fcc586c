import { describe, expect, it } from "vitest";
import { toOutcome } from "./deliver-notification.js";

const NOW = new Date("2025-06-01T00:00:00.000Z");
const SCHEDULE = [5_000, 300_000];
const later = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

describe("toOutcome", () => {
  it("schedules the n-th retry after the n-th delay, up to a tenth later", () => {
    const failed = { kind: "failed", error: "HTTP 503", permanent: false } as const;
    expect(toOutcome(failed, 0, NOW, SCHEDULE, () => 0)).toEqual({ state: "pending", at: NOW.toISOString(), nextAttemptAt: later(5_000), error: "HTTP 503" });
    expect(toOutcome(failed, 1, NOW, SCHEDULE, () => 0.999_999)).toEqual({ state: "pending", at: NOW.toISOString(), nextAttemptAt: later(330_000), error: "HTTP 503" });
  });

  it("gives up after the last delay, and at once on a permanent failure", () => {
    expect(toOutcome({ kind: "failed", error: "HTTP 500", permanent: false }, 2, NOW, SCHEDULE, () => 0)).toEqual({ state: "failed", at: NOW.toISOString(), error: "HTTP 500" });
    expect(toOutcome({ kind: "failed", error: "SMTP 550", permanent: true }, 0, NOW, SCHEDULE, () => 0)).toEqual({ state: "failed", at: NOW.toISOString(), error: "SMTP 550" });
  });

  it("records deliveries and skips as they are", () => {
    expect(toOutcome({ kind: "delivered" }, 3, NOW, SCHEDULE, () => 0)).toEqual({ state: "delivered", at: NOW.toISOString() });
    expect(toOutcome({ kind: "skipped", reason: "No webhook URL is set." }, 0, NOW, SCHEDULE, () => 0)).toEqual({
      state: "skipped",
      at: NOW.toISOString(),
      reason: "No webhook URL is set.",
    });
  });
});
