import type { Tier } from "../config/tiers.js";
import { OWNER_PATTERN } from "../lib/domain.js";

/**
 * The verified caller of an end-user route, built only from a token whose signature and standard
 * claims have been checked.
 */
export type Principal = {
  kind: "user";
  /** The acting user (`sub` claim). */
  sub: string;
  /** Whose keys and budgets the call uses: `user:<id>` or `project:<id>` (default `user:<sub>`). */
  owner: string;
  /** A configured tier name (default: the configured default tier). */
  tier: string;
};

/**
 * Grammar of the `sub` claim. The default owner is `user:<sub>`, so `sub` must fit the owner id
 * grammar of `OWNER_PATTERN`; it also keeps log lines and audit rows free of control characters.
 */
export const SUBJECT_PATTERN = /^[A-Za-z0-9._@-]{1,128}$/;

/** Why a verified claims set does not describe a principal. */
export type PrincipalRejection = "missing_claim" | "bad_claim";

/** Reads the principal out of verified claims; every malformed value is refused, never coerced. */
export function principalFromClaims(
  claims: Readonly<Record<string, unknown>>,
  options: { tiers: Readonly<Record<string, Tier>>; defaultTier: string },
): { ok: true; principal: Principal } | { ok: false; reason: PrincipalRejection } {
  if (!Object.hasOwn(claims, "sub")) return { ok: false, reason: "missing_claim" };
  const sub = claims["sub"];
  if (typeof sub !== "string" || !SUBJECT_PATTERN.test(sub)) return { ok: false, reason: "bad_claim" };

  let owner = `user:${sub}`;
  if (Object.hasOwn(claims, "owner")) {
    const claimed = claims["owner"];
    if (typeof claimed !== "string" || !OWNER_PATTERN.test(claimed)) return { ok: false, reason: "bad_claim" };
    owner = claimed;
  }

  let tier = options.defaultTier;
  if (Object.hasOwn(claims, "tier")) {
    const claimed = claims["tier"];
    // `Object.hasOwn`, not `in`: a tier of "__proto__" or "constructor" must not resolve through
    // the prototype chain of the tiers map.
    if (typeof claimed !== "string" || !Object.hasOwn(options.tiers, claimed)) {
      return { ok: false, reason: "bad_claim" };
    }
    tier = claimed;
  }

  return { ok: true, principal: { kind: "user", sub, owner, tier } };
}
