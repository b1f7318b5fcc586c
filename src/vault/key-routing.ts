import type { KeyStatus } from "../lib/domain.js";

/** Why the platform key (or no key) serves an owner's calls. */
export type PlatformReason = "no_own_key" | "byok_not_allowed" | "own_key_unusable" | "own_key_failed";

/** Statuses of an active key that the gateway sends upstream. */
export const USABLE_KEY_STATUSES: ReadonlySet<KeyStatus> = new Set(["valid", "unverified"]);

/**
 * Which credential serves an owner's calls to one provider: the rule itself, shared by the
 * gateway (which acts on it) and the API (which tells the user). `blocked`: the active key no
 * longer decrypts, and calls fail until it is re-entered; it is never treated as "no key".
 */
export type KeySourceDecision =
  | { source: "byok" }
  | { source: "blocked" }
  | { source: "platform"; reason: Exclude<PlatformReason, "own_key_failed"> }
  | { source: "none"; reason: Exclude<PlatformReason, "own_key_failed"> };

export function decideKeySource(input: { byokAllowed: boolean; activeStatus: KeyStatus | undefined; hasPlatformKey: boolean }): KeySourceDecision {
  const platform = (reason: Exclude<PlatformReason, "own_key_failed">): KeySourceDecision =>
    input.hasPlatformKey ? { source: "platform", reason } : { source: "none", reason };
  if (!input.byokAllowed) return platform("byok_not_allowed");
  if (input.activeStatus === undefined) return platform("no_own_key");
  if (input.activeStatus === "undecryptable") return { source: "blocked" };
  if (!USABLE_KEY_STATUSES.has(input.activeStatus)) return platform("own_key_unusable");
  return { source: "byok" };
}
