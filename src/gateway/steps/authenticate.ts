import type { Principal } from "../../auth/principal.js";
import { type JwtVerifier, principalFromOutcome } from "../../auth/jwt-verifier.js";
import { readBearerToken } from "../../auth/read-credential.js";
import { AppError } from "../../lib/errors.js";
import type { GatewayRequest } from "../gateway-request.js";

export type AuthenticateDeps = { verifier: JwtVerifier };

/**
 * The caller's principal from its Keyport token, sent where the SDKs put the API key
 * (`Authorization: Bearer`, or `x-api-key` for the Anthropic SDK). A token verified before comes
 * from the verifier's cache (nearly every call).
 * @throws AppError `unauthenticated` (no or a bad token), `unavailable` (the key source is down)
 */
export async function authenticate(request: GatewayRequest, { verifier }: AuthenticateDeps): Promise<Principal> {
  const token = readBearerToken(request.headers, { allowXApiKey: true });
  if (token === undefined) throw new AppError("unauthenticated", "Missing credentials: send your Keyport token as the API key.");
  return principalFromOutcome(verifier.verifyCached(token) ?? (await verifier.verify(token)));
}
