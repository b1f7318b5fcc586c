import type { FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.js";
import { type JwtVerifier, principalFromOutcome } from "../auth/jwt-verifier.js";
import { readBearerToken } from "../auth/read-credential.js";
import type { Actor } from "../audit/audit-log.js";
import { AppError } from "../lib/errors.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * onRequest hook for end-user routes: a valid JWT or a 401. The reason is logged, not rendered, so a
 * caller cannot probe which check failed.
 */
export function createAuthenticate(verifier: JwtVerifier) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const token = readBearerToken(request.headers, { allowXApiKey: false });
    if (token === undefined) {
      throw new AppError("unauthenticated", "Missing credentials: send Authorization: Bearer <JWT>.");
    }
    const outcome = await verifier.verify(token);
    if (!outcome.ok && outcome.reason !== "unavailable") request.log.info({ reason: outcome.reason }, "token refused");
    request.principal = principalFromOutcome(outcome);
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new AppError("unauthenticated", "Missing credentials: send Authorization: Bearer <JWT>.");
  return request.principal;
}

export function actorOf(request: FastifyRequest): Actor {
  const userAgent = request.headers["user-agent"];
  return { actor: principalOf(request).sub, ip: request.ip, userAgent: typeof userAgent === "string" ? userAgent : null };
}
