import type { FastifyInstance } from "fastify";
import { AppError } from "../lib/errors.js";
import type { ProviderId } from "../lib/domain.js";
import type { GatewayAdapter } from "../providers/gateway-spec.js";
import type { GatewayRoute, Proxy } from "./proxy.js";

/** Provider paths mirrored under a prefix, so the official SDKs work by changing `baseURL` alone. */
const ROUTES: readonly (GatewayRoute & { paths: readonly string[] })[] = [
  { provider: "openai", endpoint: "chat.completions", method: "POST", paths: ["/openai/v1/chat/completions", "/v1/chat/completions"] },
  { provider: "openai", endpoint: "embeddings", method: "POST", paths: ["/openai/v1/embeddings", "/v1/embeddings"] },
  { provider: "openai", endpoint: "responses", method: "POST", paths: ["/openai/v1/responses", "/v1/responses"] },
  { provider: "openai", endpoint: "models", method: "GET", paths: ["/openai/v1/models", "/v1/models"] },
  { provider: "anthropic", endpoint: "messages", method: "POST", paths: ["/anthropic/v1/messages", "/v1/messages"] },
  { provider: "anthropic", endpoint: "messages.count_tokens", method: "POST", paths: ["/anthropic/v1/messages/count_tokens"] },
  { provider: "anthropic", endpoint: "models", method: "GET", paths: ["/anthropic/v1/models"] },
];

export type GatewayRoutesDeps = {
  proxy: Proxy;
  adapters: Readonly<Record<ProviderId, GatewayAdapter>>;
  bodyLimitBytes: number;
};

/**
 * Registers the gateway in its own Fastify scope: bodies stay raw bytes (they pass through
 * untouched; the adapter reads only the fields it needs), and errors raised before the handler
 * (body too large, wrong content type) are rendered in the provider's shape.
 */
export async function registerGatewayRoutes(app: FastifyInstance, { proxy, adapters, bodyLimitBytes }: GatewayRoutesDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: bodyLimitBytes }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((error, request, reply) => {
      const provider = providerOf(request.url);
      const code = (error as { code?: string }).code;
      const appError =
        code === "FST_ERR_CTP_BODY_TOO_LARGE"
          ? new AppError("payload_too_large", "Request body is too large.")
          : new AppError("invalid_request", "The request could not be read.");
      const rendered = adapters[provider].renderError(appError);
      return reply.status(rendered.status).headers(rendered.headers).send(rendered.body);
    });
    for (const route of ROUTES) {
      const { paths, ...gatewayRoute } = route;
      for (const path of paths) {
        scope.route({
          method: route.method,
          url: path,
          schema: { hide: true },
          bodyLimit: bodyLimitBytes,
          handler: (request, reply) => proxy.handle(gatewayRoute, request, reply),
        });
      }
    }
  });
}

function providerOf(url: string): ProviderId {
  return url.startsWith("/anthropic/") || url.startsWith("/v1/messages") ? "anthropic" : "openai";
}
