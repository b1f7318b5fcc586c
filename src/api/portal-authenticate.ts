import type { FastifyRequest } from "fastify";
import type { Principal } from "../auth/principal.js";
import { AppError } from "../lib/errors.js";
import { isCsrfTokenValid, type PortalSessionRow, type PortalSessions } from "../portal/portal-sessions.js";
import type { SessionCookie } from "../portal/session-cookie.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set when the request is authenticated by a portal session cookie (the Settings page). */
    portalSession: { token: string; row: PortalSessionRow } | null;
  }
}

export type PortalAuthenticateDeps = {
  sessions: Pick<PortalSessions, "findSession">;
  cookie: SessionCookie;
  /** Configured tiers: a session whose tier was removed since no longer opens. */
  hasTier: (tier: string) => boolean;
  /** `KEYPORT_PUBLIC_URL`'s origin; unset: the request's own. */
  publicOrigin: string | undefined;
};

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const CSRF_HEADER = "x-csrf-token";

/** The origin a cookie-authenticated write must come from. */
export function expectedOrigin(request: FastifyRequest, publicOrigin: string | undefined): string {
  return publicOrigin ?? `${request.protocol}://${request.host}`;
}

/**
 * Authenticates a request by its portal session cookie, or answers `undefined` when it carries
 * none. A write (any method but GET/HEAD/OPTIONS) must also come from Keyport's own origin
 * (`Origin` header) and carry the session's CSRF token: the cookie alone, which a browser attaches
 * to a cross-site request, never changes anything.
 */
export function createPortalAuthenticate({ sessions, cookie, hasTier, publicOrigin }: PortalAuthenticateDeps) {
  return async function authenticatePortal(request: FastifyRequest): Promise<Principal | undefined> {
    const token = cookie.read(request.headers.cookie);
    if (token === undefined || token === "") return undefined;
    const row = await sessions.findSession(token);
    if (row === undefined || !hasTier(row.tier)) {
      throw new AppError("unauthenticated", "Your Settings session has ended; open Settings again from the app.");
    }
    if (!SAFE_METHODS.has(request.method)) {
      const origin = request.headers.origin;
      if (origin !== expectedOrigin(request, publicOrigin)) {
        request.log.info({ origin: origin ?? null }, "portal write from another origin refused");
        throw new AppError("forbidden", "This change must come from the Settings page itself.");
      }
      const presented = request.headers[CSRF_HEADER];
      if (!isCsrfTokenValid(token, typeof presented === "string" ? presented : undefined)) {
        throw new AppError("forbidden", "Missing or wrong CSRF token (x-csrf-token): reload the Settings page.");
      }
    }
    request.portalSession = { token, row };
    return { kind: "user", sub: row.sub, owner: row.owner, tier: row.tier };
  };
}

export type PortalAuthenticate = ReturnType<typeof createPortalAuthenticate>;
