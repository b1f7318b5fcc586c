import { SignJWT } from "jose";
import { MIN_JWT_SECRET_BYTES_BY_ALGORITHM } from "../config/load-config.js";
import { TIER_NAME_PATTERN } from "../config/tiers.js";
import { OWNER_PATTERN } from "../lib/domain.js";
import { AppError } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import { SUBJECT_PATTERN } from "./principal.js";

export type DevTokenOptions = {
  secret: Redacted<string>;
  algorithm: "HS256" | "HS384" | "HS512";
  sub: string;
  owner?: string;
  tier?: string;
  /** Lifetime in seconds. Default 3600. */
  expiresInSeconds?: number;
  issuer?: string;
  audience?: string;
};

/**
 * Signs an end-user token with the shared HMAC secret, for `keyport token` and for tests. It
 * refuses claims the verifier would refuse, so a bad token fails here with a clear message
 * rather than later as a bare 401.
 */
export async function signDevToken(options: DevTokenOptions): Promise<string> {
  const { secret, algorithm, sub, owner, tier, issuer, audience } = options;
  const expiresInSeconds = options.expiresInSeconds ?? 3600;
  const key = new TextEncoder().encode(secret.reveal());
  const minimumBytes = MIN_JWT_SECRET_BYTES_BY_ALGORITHM[algorithm];
  if (key.byteLength < minimumBytes) {
    throw new AppError("invalid_request", `The JWT secret must be at least ${minimumBytes} bytes for ${algorithm}.`);
  }
  if (!SUBJECT_PATTERN.test(sub)) {
    throw new AppError("invalid_request", `sub must match ${SUBJECT_PATTERN.source}.`);
  }
  if (owner !== undefined && !OWNER_PATTERN.test(owner)) {
    throw new AppError("invalid_request", "owner must be user:<id> or project:<id>.");
  }
  if (tier !== undefined && !TIER_NAME_PATTERN.test(tier)) {
    throw new AppError("invalid_request", `tier must match ${TIER_NAME_PATTERN.source}.`);
  }
  if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds <= 0) {
    throw new AppError("invalid_request", "expiresInSeconds must be a positive whole number.");
  }

  const claims: Record<string, string> = {};
  if (owner !== undefined) claims["owner"] = owner;
  if (tier !== undefined) claims["tier"] = tier;
  const issuedAt = Math.floor(Date.now() / 1000);
  const token = new SignJWT(claims)
    .setProtectedHeader({ alg: algorithm, typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + expiresInSeconds);
  if (issuer !== undefined) token.setIssuer(issuer);
  if (audience !== undefined) token.setAudience(audience);
  return token.sign(key);
}
