import { createHash, timingSafeEqual } from "node:crypto";
import type { Redacted } from "../lib/redacted.js";

/**
 * Builds the check for `Authorization: Bearer <KEYPORT_ADMIN_TOKEN>` on operator routes. Both
 * sides are hashed with SHA-256 first so `timingSafeEqual` always compares 32 bytes: the time
 * taken reveals neither the token's content nor its length. Without a configured admin token
 * every presented value is refused (operator routes are off).
 */
export function createOperatorTokenCheck(adminToken: Redacted<string> | undefined): (presented: string | undefined) => boolean {
  if (adminToken === undefined) return () => false;
  const expected = sha256(adminToken.reveal());
  return (presented) => {
    if (presented === undefined || presented === "") return false;
    return timingSafeEqual(sha256(presented), expected);
  };
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
