import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { ProviderId } from "../lib/domain.js";
import type { GatewayAdapter } from "../providers/gateway-spec.js";
import type { GatewayLog, GatewayRequest } from "./gateway-request.js";
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

export type GatewayDispatchDeps = {
  proxy: Proxy;
  adapters: Readonly<Record<ProviderId, GatewayAdapter>>;
  bodyLimitBytes: number;
  log: GatewayLog & { child(bindings: Record<string, unknown>): GatewayLog };
};

/**
 * Serves gateway calls straight from Node's HTTP server, ahead of Fastify's router: these routes
 * need none of its schema, hook or serialisation machinery, and on the hot path that machinery
 * costs more CPU than the rest of a call. The body is read as raw bytes (it passes through
 * untouched); size limits and errors are answered in the provider's own shape. Returns false for
 * any other request, which then goes to Fastify.
 */
export function createGatewayDispatch({ proxy, adapters, bodyLimitBytes, log }: GatewayDispatchDeps) {
  const byKey = new Map<string, { route: GatewayRoute; path: string }>();
  for (const { paths, ...route } of ROUTES) for (const path of paths) byKey.set(`${route.method} ${path}`, { route, path });

  return function dispatch(incoming: IncomingMessage, response: ServerResponse): boolean {
    const url = incoming.url ?? "/";
    const queryAt = url.indexOf("?");
    const match = byKey.get(`${incoming.method ?? ""} ${queryAt === -1 ? url : url.slice(0, queryAt)}`);
    if (match === undefined) return false;
    const id = newId("req");
    const adapter = adapters[match.route.provider];
    readBody(incoming, bodyLimitBytes).then(
      (body) => {
        const request: GatewayRequest = {
          id,
          routePath: match.path,
          url,
          headers: incoming.headers,
          ip: incoming.socket.remoteAddress ?? "",
          body,
          log: new LazyChildLog(log, id),
        };
        return proxy.handle(match.route, request, response);
      },
      (error: unknown) => {
        const appError = error instanceof AppError ? error : new AppError("invalid_request", "The request body could not be read.");
        const rendered = adapter.renderError(appError);
        if (response.headersSent || response.destroyed) return;
        response.writeHead(rendered.status, { ...rendered.headers, "x-request-id": id, connection: "close" });
        response.end(rendered.body);
      },
    );
    return true;
  };
}

/** Reads the whole body, refusing one over the limit (by Content-Length first, then by count). */
function readBody(incoming: IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  const tooLarge = () => new AppError("payload_too_large", "Request body is too large.");
  const declared = Number(incoming.headers["content-length"] ?? "0");
  if (declared > limitBytes) {
    incoming.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        incoming.removeAllListeners("data");
        incoming.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    incoming.once("end", () => resolve(size === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    incoming.once("error", reject);
  });
}

/**
 * A per-call child logger, made only when something is logged (rarely, at the default level).
 * A class, so a call allocates one small object and no closures.
 */
class LazyChildLog implements GatewayLog {
  #child: GatewayLog | undefined;
  readonly #parent: GatewayDispatchDeps["log"];
  readonly #requestId: string;

  constructor(parent: GatewayDispatchDeps["log"], requestId: string) {
    this.#parent = parent;
    this.#requestId = requestId;
  }

  get level(): string {
    return this.#parent.level;
  }

  #get(): GatewayLog {
    return (this.#child ??= this.#parent.child({ requestId: this.#requestId }));
  }

  debug(object: object, message: string): void {
    this.#get().debug(object, message);
  }

  info(object: object, message: string): void {
    this.#get().info(object, message);
  }

  warn(object: object, message: string): void {
    this.#get().warn(object, message);
  }

  error(object: object, message: string): void {
    this.#get().error(object, message);
  }
}
