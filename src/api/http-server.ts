import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { Logger } from "pino";
import type { ProxyTrust } from "../auth/client-address.js";
import { AppError } from "../lib/errors.js";
import { requestIdOf } from "../lib/request-id.js";
import { renderApiError, toAppError } from "./error-envelope.js";
import { assertUtf8Json, parseJsonBody } from "./json-body.js";
import { nameSchemaComponents } from "./openapi-components.js";

/**
 * Requests served ahead of Fastify's router (the gateway). Filled in after the server is created,
 * because the gateway is built from services that come later.
 */
export type PreRouter = { dispatch?: (request: IncomingMessage, response: ServerResponse) => boolean };

export type HttpServerOptions = {
  preRouter: PreRouter;
  logger: Logger;
  bodyLimitBytes: number;
  /** Which peers may name the client in `X-Forwarded-For` (see `auth/client-address.ts`). */
  trustProxy: ProxyTrust;
  version: string;
};

/**
 * The Fastify instance with Keyport's defaults: strict validation (no coercion, no silent
 * removal of unknown fields), our request ids, one error renderer and the OpenAPI document.
 */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = options.logger;
  const { preRouter } = options;
  const app = fastify({
    loggerInstance,
    serverFactory: (handler) =>
      createServer((request, response) => {
        if (preRouter.dispatch?.(request, response) !== true) handler(request, response);
      }),
    // Our own onResponse line replaces Fastify's two per-request lines (which would log headers).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "requestId" }),
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    genReqId: (request) => requestIdOf(request.headers),
    // Fastify's defaults coerce types and strip unknown fields; a management API must reject both.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    onProtoPoisoning: "error",
    onConstructorPoisoning: "error",
    return503OnClosing: true,
  });
  app.decorateRequest("principal", null);
  app.decorateRequest("portalSession", null);
  // JSON in UTF-8 is the only body the management API reads: Fastify's own parsers (including
  // text/plain, which would hand a string to the schema) go, so any other type is a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    try {
      assertUtf8Json(request.headers["content-type"]);
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("x-request-id", request.id);
    return payload;
  });
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error);
    if (appError.code === "internal") request.log.error({ err: error }, "unhandled error");
    else request.log.debug({ code: appError.code, ...appError.internal }, "request refused");
    return renderApiError(appError, request, reply);
  });
  app.setNotFoundHandler((request, reply) =>
    renderApiError(new AppError("not_found", `No route ${request.method} ${request.url.split("?")[0] ?? ""}.`), request, reply),
  );

  await app.register(swagger, {
    // Schemas registered with an `$id` appear in components.schemas under that name.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === "string" ? json.$id : `def-${index}`) },
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Keyport",
        version: options.version,
        description: "Bring-your-own-key vault and LLM gateway. End-user routes take `Authorization: Bearer <JWT>`.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          operator: { type: "http", scheme: "bearer", description: "KEYPORT_ADMIN_TOKEN" },
          portalSession: { type: "apiKey", in: "cookie", name: "keyport_session", description: "set by a portal link; writes also need x-csrf-token" },
        },
      },
      security: [{ bearer: [] }, { portalSession: [] }],
    },
    transformObject: (document) => ("openapiObject" in document ? nameSchemaComponents(document.openapiObject) : document.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/**
 * One info line per management request. Gateway calls write none at the default level: they are
 * the hot path, and usage records already account for every call.
 */
export function logCompletedRequests(scope: FastifyInstance): void {
  scope.addHook("onResponse", async (request, reply) => {
    request.log.info(
      { method: request.method, route: request.routeOptions.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      "request completed",
    );
  });
}
