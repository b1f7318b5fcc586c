import { AppError } from "../lib/errors.js";
import type { AuthFailureThrottle, FailureOutcome } from "../limits/auth-failure-throttle.js";
import { type ClientConnection, clientAddressOf, type ProxyTrust } from "./client-address.js";
import { type JwtVerifier, principalFromOutcome } from "./jwt-verifier.js";
import type { Principal } from "./principal.js";

/**
 * Authenticates an end user's bearer token for the management API and the gateway alike, with
 * failed attempts throttled per client address.
 */
export type TokenAuthenticator = {
  /**
   * The token's principal; without a promise when the token verified before (the gateway's usual
   * call). Throws an AppError: `rate_limited` (with `retry-after`) when the client's address has
   * used up its failures, before any signature check; `unauthenticated`; `unavailable`.
   */
  authenticate(token: string, remoteAddress: string | undefined, headers: ClientConnection["headers"]): Principal | Promise<Principal>;
};

export type TokenAuthenticatorDeps = {
  verifier: JwtVerifier;
  throttle: AuthFailureThrottle;
  trust: ProxyTrust;
  /** Told when a failure could not be counted (the shared counter is down): the refusal stands. */
  onThrottleError?: (error: unknown) => void;
};

export function createTokenAuthenticator({ verifier, throttle, trust, onThrottleError }: TokenAuthenticatorDeps): TokenAuthenticator {
  async function verifyThrottled(token: string, address: string): Promise<Principal> {
    const outcome = await verifier.verify(token);
    // A JWKS outage says nothing about the caller: it is not a failure of theirs.
    if (!outcome.ok && outcome.reason !== "unavailable") {
      let failure: FailureOutcome | undefined;
      try {
        failure = await throttle.recordFailure(address);
      } catch (error) {
        onThrottleError?.(error);
      }
      if (failure?.overLimit === true) throw tooManyFailures(failure.blockedForMs, outcome.reason);
    }
    return principalFromOutcome(outcome);
  }

  return {
    // Plain arguments rather than an object: the gateway calls this on every call.
    authenticate(token, remoteAddress, headers) {
      // A token that verified before costs nothing to check again: never throttled, no lookup.
      const cached = verifier.verifyCached(token);
      if (cached !== undefined) return principalFromOutcome(cached);
      const address = clientAddressOf({ remoteAddress, headers }, trust);
      const blockedForMs = throttle.blockedForMs(address);
      if (blockedForMs > 0) throw tooManyFailures(blockedForMs, "blocked");
      return verifyThrottled(token, address);
    },
  };
}

function tooManyFailures(blockedForMs: number, reason: string): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(blockedForMs / 1000));
  return new AppError("rate_limited", `Too many failed authentications from your address. Retry in ${retryAfterSeconds}s.`, {
    headers: { "retry-after": String(retryAfterSeconds) },
    internal: { reason: `auth_throttled:${reason}` },
  });
}
