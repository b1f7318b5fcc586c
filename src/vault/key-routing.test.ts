import { describe, expect, it } from "vitest";
import { KEY_STATUSES, type KeyStatus } from "../lib/domain.js";
import { decideKeySource, type KeySourceDecision } from "./key-routing.js";

describe("decideKeySource: which credential serves an owner's calls", () => {
  const expected: Record<KeyStatus, KeySourceDecision> = {
    valid: { source: "byok" },
    unverified: { source: "byok" },
    invalid: { source: "platform", reason: "own_key_unusable" },
    no_credits: { source: "platform", reason: "own_key_unusable" },
    undecryptable: { source: "blocked" },
  };

  it.each(KEY_STATUSES.map((status) => [status, expected[status]] as const))("an active %s key on a plan with BYOK: %j", (status, decision) => {
    expect(decideKeySource({ byokAllowed: true, activeStatus: status, hasPlatformKey: true })).toEqual(decision);
  });

  it("never uses the owner's key on a plan without BYOK, whatever its status, and never blocks there", () => {
    for (const status of [...KEY_STATUSES, undefined]) {
      expect(decideKeySource({ byokAllowed: false, activeStatus: status, hasPlatformKey: true })).toEqual({ source: "platform", reason: "byok_not_allowed" });
      expect(decideKeySource({ byokAllowed: false, activeStatus: status, hasPlatformKey: false })).toEqual({ source: "none", reason: "byok_not_allowed" });
    }
  });

  it("falls to the platform key, or to none, without an own key or with an unusable one", () => {
    expect(decideKeySource({ byokAllowed: true, activeStatus: undefined, hasPlatformKey: true })).toEqual({ source: "platform", reason: "no_own_key" });
    expect(decideKeySource({ byokAllowed: true, activeStatus: undefined, hasPlatformKey: false })).toEqual({ source: "none", reason: "no_own_key" });
    expect(decideKeySource({ byokAllowed: true, activeStatus: "invalid", hasPlatformKey: false })).toEqual({ source: "none", reason: "own_key_unusable" });
    // A key that must be re-entered is never silently replaced by the platform key.
    expect(decideKeySource({ byokAllowed: true, activeStatus: "undecryptable", hasPlatformKey: true })).toEqual({ source: "blocked" });
  });
});
