import type { FastifyInstance } from "fastify";
import { AppError } from "../lib/errors.js";
import type { PortalSessions } from "../portal/portal-sessions.js";
import { csrfTokenFor, portalLinkUrl } from "../portal/portal-sessions.js";
import type { SessionCookie } from "../portal/session-cookie.js";
import { expectedOrigin } from "./portal-authenticate.js";
import { CreatePortalSessionBody, CurrentPortalSession, PortalSessionLink } from "./portal-schemas.js";
import { commonErrorResponses, ErrorEnvelope } from "./schemas.js";

export type OperatorPortalRoutesDeps = {
  sessions: Pick<PortalSessions, "createLink">;
  hasTier: (tier: string) => boolean;
  defaultTier: string;
  publicOrigin: string | undefined;
};

const tags = ["portal-sessions"];

/** `POST /api/v1/portal-sessions` (operator): a one-time link to one owner's Settings page. */
export function registerOperatorPortalRoutes(app: FastifyInstance, deps: OperatorPortalRoutesDeps): void {
  app.post(
    "/api/v1/portal-sessions",
    {
      schema: {
        tags,
        operationId: "createPortalSession",
        summary: "Create a one-time link to an owner's Settings page (operator token)",
        security: [{ operator: [] }],
        body: CreatePortalSessionBody,
        response: { 201: PortalSessionLink, 403: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body as CreatePortalSessionBody;
      const tier = body.tier ?? deps.defaultTier;
      if (!deps.hasTier(tier)) throw new AppError("invalid_request", `Invalid request body: tier "${tier}" is not a configured tier.`);
      const link = await deps.sessions.createLink({
        owner: body.owner ?? `user:${body.sub}`,
        sub: body.sub,
        tier,
        returnUrl: body.returnUrl === undefined ? null : checkReturnUrl(body.returnUrl),
        theme: body.theme ?? {},
      });
      reply.header("cache-control", "no-store");
      return reply.status(201).send({ url: portalLinkUrl(deps.publicOrigin ?? expectedOrigin(request, undefined), link.token), expiresAt: link.expiresAt });
    },
  );
}

/** The Settings page's own session: what it shows, and its CSRF token; and signing out. */
export function registerPortalSessionRoutes(app: FastifyInstance, deps: { sessions: Pick<PortalSessions, "endSession">; cookie: SessionCookie }): void {
  app.get(
    "/api/v1/portal-sessions/current",
    {
      schema: {
        tags,
        operationId: "getCurrentPortalSession",
        summary: "The portal session of the calling Settings page (cookie), with its CSRF token",
        security: [{ portalSession: [] }],
        response: { 200: CurrentPortalSession, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const session = request.portalSession;
      if (session === null) throw new AppError("not_found", "No portal session: this route answers the Settings page, which signs in with a portal link.");
      reply.header("cache-control", "no-store");
      return {
        owner: session.row.owner,
        sub: session.row.sub,
        tier: session.row.tier,
        expiresAt: session.row.sessionExpiresAt,
        csrfToken: csrfTokenFor(session.token),
        returnUrl: session.row.returnUrl,
        theme: session.row.theme,
      };
    },
  );

  app.delete(
    "/api/v1/portal-sessions/current",
    {
      schema: {
        tags,
        operationId: "endCurrentPortalSession",
        summary: "Sign the Settings page out (ends the portal session)",
        security: [{ portalSession: [] }],
        response: { 204: { type: "null" }, 403: ErrorEnvelope, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const session = request.portalSession;
      if (session === null) throw new AppError("not_found", "No portal session to end.");
      await deps.sessions.endSession(session.token);
      return reply.header("set-cookie", deps.cookie.clear()).status(204).send();
    },
  );
}

/** Only http(s): the page shows it as a link, and a `javascript:` URL there would run script. */
function checkReturnUrl(value: string): string {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:") || url.username !== "" || url.password !== "") {
    throw new AppError("invalid_request", "Invalid request body: returnUrl must be an http(s) URL without credentials.");
  }
  return url.href;
}
