import type { FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.js";
import { readBearerToken } from "../auth/read-credential.js";
import type { TokenAuthenticator } from "../auth/token-authenticator.js";
import type { Actor } from "../audit/audit-log.js";
import { AppError, isAppError } from "../lib/errors.js";
import type { PortalAuthenticate } from "./portal-authenticate.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * onRequest hook for end-user routes: a valid JWT, or (without an Authorization header) a portal
 * session cookie, or a 401 (429 once the client's address has failed too often). The reason is
 * logged, not rendered, so a caller cannot probe which check failed.
 */
export function createAuthenticate(authenticator: TokenAuthenticator, authenticatePortal?: PortalAuthenticate) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    if (request.headers.authorization === undefined && authenticatePortal !== undefined) {
      const principal = await authenticatePortal(request);
      if (principal !== undefined) {
        request.principal = principal;
        return;
      }
    }
    const token = readBearerToken(request.headers, { allowXApiKey: false });
    if (token === undefined) {
      throw new AppError("unauthenticated", "Missing credentials: send Authorization: Bearer <JWT>.");
    }
    try {
      request.principal = await authenticator.authenticate(token, request.socket.remoteAddress, request.headers);
    } catch (error) {
      if (isAppError(error) && error.code !== "unavailable") request.log.info({ reason: error.internal.reason }, "token refused");
      throw error;
    }
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
