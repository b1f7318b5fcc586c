import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { linkRefusedPage, pageNotBuiltPage } from "../portal/link-pages.js";
import type { PageAssets } from "../portal/page-assets.js";
import type { PortalSessions } from "../portal/portal-sessions.js";
import type { SessionCookie } from "../portal/session-cookie.js";

export type PortalPageRoutesDeps = {
  sessions: Pick<PortalSessions, "openLink">;
  cookie: SessionCookie;
  assets: PageAssets;
  /** Security headers of every page response (CSP, framing). */
  headers: Readonly<Record<string, string>>;
  sessionTtlSeconds: number;
};

const LINK_TOKEN = { type: "object", properties: { token: { type: "string", maxLength: 128 } }, required: ["token"], additionalProperties: false } as const;
const ASSET = { type: "object", properties: { "*": { type: "string", maxLength: 200 } }, additionalProperties: false } as const;

/**
 * The Settings page: `/portal/open/:token` opens a one-time link (sets the session cookie and
 * redirects to the page, or explains why the link no longer works), `/portal/` serves the page
 * and `/portal/assets/*` its files. Not part of the API document.
 */
export function registerPortalPageRoutes(app: FastifyInstance, deps: PortalPageRoutesDeps): void {
  const { assets } = deps;

  function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
    return reply.headers(deps.headers).header("cache-control", "no-store").type("text/html; charset=utf-8").status(status).send(html);
  }

  function sendAsset(request: FastifyRequest, reply: FastifyReply, relative: string, cacheControl?: string): FastifyReply {
    const asset = assets.get(relative);
    if (asset === undefined) {
      if (!assets.built) return sendHtml(reply, 503, pageNotBuiltPage());
      return reply.headers(deps.headers).type("text/plain; charset=utf-8").status(404).send("Not found");
    }
    reply.headers(deps.headers).header("etag", asset.etag).type(asset.contentType);
    reply.header("cache-control", cacheControl ?? (asset.immutable ? "public, max-age=31536000, immutable" : "no-cache"));
    if (request.headers["if-none-match"] === asset.etag) return reply.status(304).send();
    return reply.status(200).send(asset.body);
  }

  app.get("/portal/open/:token", { schema: { hide: true, params: LINK_TOKEN } }, async (request, reply) => {
    const opened = await deps.sessions.openLink((request.params as { token: string }).token);
    if (!opened.ok) {
      request.log.info({ reason: opened.reason }, "portal link refused");
      return sendHtml(reply, opened.reason === "unknown" ? 404 : 410, linkRefusedPage(opened, assets.stylesheetHref));
    }
    request.log.info({ owner: opened.session.owner }, "portal session opened");
    return reply
      .headers(deps.headers)
      .header("cache-control", "no-store")
      .header("set-cookie", deps.cookie.serialize(opened.sessionToken, deps.sessionTtlSeconds))
      .redirect("/portal/", 303);
  });

  app.get("/portal", { schema: { hide: true } }, async (_request, reply) => reply.redirect("/portal/", 308));
  // The page itself is never cached: it names the current build's assets.
  app.get("/portal/", { schema: { hide: true } }, async (request, reply) => sendAsset(request, reply, "index.html", "no-store"));
  app.get("/portal/assets/*", { schema: { hide: true, params: ASSET } }, async (request, reply) =>
    sendAsset(request, reply, `assets/${(request.params as { "*": string })["*"]}`),
  );
}
