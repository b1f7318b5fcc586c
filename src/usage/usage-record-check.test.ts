import { describe, expect, it } from "vitest";
import { newId } from "../lib/ids.js";
import { newUsageRecord } from "../store/fixtures.contract.js";
import type { UsageRecord } from "../store/ports.js";
import { checkUsageRecord } from "./usage-record-check.js";
import { recordsOf } from "./usage-journal.js";

/** A stored-shape record of a platform call on the "pro" tier. */
function record(overrides: Partial<UsageRecord> = {}): UsageRecord {
  return newUsageRecord("user:tier", null, overrides);
}

function checked(value: UsageRecord): UsageRecord {
  const check = checkUsageRecord(value);
  if (!check.ok) throw new Error(check.reason);
  return check.record;
}

describe("usage record check: the caller's tier", () => {
  it("keeps the tier, and null stays null", () => {
    expect(checked(record()).tier).toBe("pro");
    expect(checked(record({ tier: null })).tier).toBeNull();
  });

  it("makes a tier it cannot store unknown (null) rather than refusing the call", () => {
    for (const tier of ["", "x".repeat(257), "a\u0000b", 7 as unknown as string]) {
      const check = checkUsageRecord(record({ tier }));
      expect(check).toMatchObject({ ok: true, record: { tier: null } });
    }
  });

  it("replays a journal's end line with its tier, and one written before tiers were recorded as null", () => {
    const withTier = record({ tier: "free" });
    const { tier: _tier, ...before } = record();
    const { records } = recordsOf([`E${JSON.stringify(withTier)}\nE${JSON.stringify(before)}\n`]);
    // Replay runs every record through the check before the store sees it.
    expect(records.map(checked).map((replayed) => [replayed.id, replayed.tier])).toEqual([
      [withTier.id, "free"],
      [before.id, null],
    ]);
  });

  it("gives a call the journal saw start but never end an unknown tier: the start line does not carry it", () => {
    const start = {
      id: newId("use"),
      createdAt: "2026-03-02T10:00:00.000Z",
      requestId: newId("req"),
      owner: "user:tier",
      keyId: null,
      source: "platform",
      provider: "openai",
      endpoint: "chat.completions",
      model: "gpt-4o-mini",
      streamed: false,
      reservedNanoUsd: 9_000,
    };
    const { records, recovered } = recordsOf([`S${JSON.stringify(start)}\n`]);
    expect(recovered).toBe(1);
    expect(records.map(checked)).toMatchObject([{ id: start.id, status: "recovered", tier: null, costNanoUsd: 9_000 }]);
  });
});
