import { describe, expect, it } from "vitest";
import { createAuditLog } from "../audit/audit-log.js";
import { systemClock } from "../lib/clock.js";
import type { AuditRepo, KeyRepo, ProviderKeyRow, StatusChange } from "../store/ports.js";
import { newKey, newOwner } from "../store/fixtures.contract.js";
import { createKeyHealth } from "./key-health.js";

/** A key repository whose `setStatus` counts its writes (each one is a cache announcement) and waits to be released. */
function countingKeys() {
  const writes: StatusChange[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const keys: Pick<KeyRepo, "setStatus"> = {
    async setStatus(_owner, _id, change) {
      writes.push(change);
      await gate;
      return undefined;
    },
  };
  return { keys, writes, release };
}

function keyRow(overrides: Partial<ProviderKeyRow> = {}): ProviderKeyRow {
  const at = "2026-12-01T00:00:00.000Z";
  return {
    ...newKey(newOwner(), at),
    isActive: true,
    lastUsedAt: null,
    totalRequests: 0,
    totalTokens: 0,
    costNanoUsd: 0,
    updatedAt: at,
    statusChangedAt: at,
    ...overrides,
  };
}

const audit = { insert: async () => undefined } as unknown as AuditRepo;
const auditLog = createAuditLog({ audit, clock: systemClock });

describe("key health", () => {
  it("writes a status change once however many calls in flight on the same key learn it together", async () => {
    const { keys, writes, release } = countingKeys();
    const health = createKeyHealth({ keys, auditLog, clock: systemClock });
    const row = keyRow();
    const marks = Array.from({ length: 30 }, () => health.markStatus(row, "invalid", "revoked"));
    release();
    await Promise.all(marks);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ status: "invalid", statusDetail: "revoked", onlyIfDifferent: true });
  });

  it("does not write again for a call that finishes later holding the row from before the change", async () => {
    const { keys, writes, release } = countingKeys();
    release();
    const health = createKeyHealth({ keys, auditLog, clock: systemClock });
    const row = keyRow();
    await health.markStatus(row, "invalid", "revoked");
    expect(await health.markStatus(row, "invalid", "revoked")).toBeUndefined();
    expect(writes).toHaveLength(1);
  });

  it("writes again once the key has changed since (re-validated, then revoked again), and for another status or key", async () => {
    const { keys, writes, release } = countingKeys();
    release();
    const health = createKeyHealth({ keys, auditLog, clock: systemClock });
    const row = keyRow();
    await health.markStatus(row, "invalid", "revoked");
    await health.markStatus({ ...row, updatedAt: "2026-12-02T00:00:00.000Z", statusChangedAt: "2026-12-02T00:00:00.000Z" }, "invalid", "revoked again");
    await health.markStatus(row, "no_credits", "out of credit");
    await health.markStatus(keyRow(), "invalid", "another key");
    expect(writes.map((write) => write.statusDetail)).toEqual(["revoked", "revoked again", "out of credit", "another key"]);
  });

  it("leaves a key already in that status alone", async () => {
    const { keys, writes, release } = countingKeys();
    release();
    const health = createKeyHealth({ keys, auditLog, clock: systemClock });
    expect(await health.markStatus(keyRow({ status: "invalid" }), "invalid", "revoked")).toBeUndefined();
    expect(writes).toHaveLength(0);
  });

  it("lets a failed write be tried again by the next call", async () => {
    let attempts = 0;
    const keys: Pick<KeyRepo, "setStatus"> = {
      async setStatus() {
        attempts += 1;
        if (attempts === 1) throw new Error("announcement refused");
        return undefined;
      },
    };
    const health = createKeyHealth({ keys, auditLog, clock: systemClock });
    const row = keyRow();
    await expect(health.markStatus(row, "invalid", "revoked")).rejects.toThrow("announcement refused");
    await health.markStatus(row, "invalid", "revoked");
    expect(attempts).toBe(2);
  });
});
