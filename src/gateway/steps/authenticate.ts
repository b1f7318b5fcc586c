import type { Principal } from "../../auth/principal.js";
import { readBearerToken } from "../../auth/read-credential.js";
import type { TokenAuthenticator } from "../../auth/token-authenticator.js";
import { AppError } from "../../lib/errors.js";
import type { GatewayRequest } from "../gateway-request.js";

/** The one authentication step shared with the management API (failed attempts throttled per client address). */
export type AuthenticateDeps = { authenticator: TokenAuthenticator };

/**
 * The caller's principal from its Keyport token, sent where the SDKs put the API key
 * (`Authorization: Bearer`, or `x-api-key` for the Anthropic SDK). A token verified before comes
 * from the verifier's cache (nearly every call).
 * @throws AppError `unauthenticated` (no or a bad token), `rate_limited` (too many failed tokens
 * from this address), `unavailable` (the key source is down)
 */
export async function authenticate(request: GatewayRequest, { authenticator }: AuthenticateDeps): Promise<Principal> {
  const token = readBearerToken(request.headers, { allowXApiKey: true });
  if (token === undefined) throw new AppError("unauthenticated", "Missing credentials: send your Keyport token as the API key.");
  return authenticator.authenticate(token, request.ip, request.headers);
}
