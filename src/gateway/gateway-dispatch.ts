import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import { requestIdOf } from "../lib/request-id.js";
import type { GatewayEndpoint, ProviderAdapter, ProviderRegistry } from "../providers/spec.js";
import { createCallContext } from "./call-context.js";
import type { GatewayLog, GatewayRequest } from "./gateway-request.js";
import { type PipelineDeps, runCall } from "./pipeline.js";

export type GatewayDispatchDeps = {
  providers: ProviderRegistry;
  pipeline: PipelineDeps;
  /** Runs one call; the pipeline's `runCall` (replaced only to test what happens when it fails). */
  run?: (call: Parameters<typeof runCall>[0], deps: PipelineDeps) => Promise<void>;
  bodyLimitBytes: number;
  clock: Clock;
  log: GatewayLog & { child(bindings: Record<string, unknown>): GatewayLog };
};

type Route = { adapter: ProviderAdapter; endpoint: GatewayEndpoint; path: string };

/**
 * Serves gateway calls straight from Node's HTTP server, ahead of Fastify's router: these routes
 * need none of its schema, hook or serialisation machinery, and on the hot path that machinery
 * costs more CPU than the rest of a call. The routes are the providers' endpoint tables. The body
 * is read as raw bytes (it passes through untouched); size limits and errors are answered in the
 * provider's own shape. Returns false for any other request, which then goes to Fastify.
 */
export function createGatewayDispatch(deps: GatewayDispatchDeps) {
  const routes = new Map<string, Route>();
  for (const adapter of Object.values(deps.providers)) {
    for (const endpoint of adapter.endpoints) {
      for (const path of endpoint.routes) routes.set(`${endpoint.method} ${path}`, { adapter, endpoint, path });
    }
  }
  const run = deps.run ?? runCall;

  /** Reads the body and runs the call; never rejects (a failure here must not end the process). */
  async function serve(route: Route, incoming: IncomingMessage, response: ServerResponse, id: string): Promise<void> {
    let body: Buffer | undefined;
    try {
      body = await readBody(incoming, deps.bodyLimitBytes);
    } catch (error) {
      const appError = error instanceof AppError ? error : new AppError("invalid_request", "The request body could not be read.");
      answer(route.adapter, response, id, appError, { connection: "close" });
      return;
    }
    const request: GatewayRequest = {
      id,
      routePath: route.path,
      url: incoming.url ?? "/",
      headers: incoming.headers,
      ip: incoming.socket.remoteAddress ?? "",
      body,
      log: new LazyChildLog(deps.log, id),
    };
    const call = createCallContext({ request, response, adapter: route.adapter, endpoint: route.endpoint, createdAt: deps.clock.now() });
    await run(call, deps.pipeline);
  }

  return function dispatch(incoming: IncomingMessage, response: ServerResponse): boolean {
    const url = incoming.url ?? "/";
    const queryAt = url.indexOf("?");
    const route = routes.get(`${incoming.method ?? ""} ${queryAt === -1 ? url : url.slice(0, queryAt)}`);
    if (route === undefined) return false;
    const id = requestIdOf(incoming.headers);
    serve(route, incoming, response, id).catch((error: unknown) => {
      deps.log.error({ err: error, requestId: id }, "gateway call failed unexpectedly");
      answer(route.adapter, response, id, new AppError("internal", "Internal error"), {});
    });
    return true;
  };
}

/** Keyport's own error in the provider's shape, unless an answer has already started (then the connection is cut). */
function answer(adapter: ProviderAdapter, response: ServerResponse, id: string, error: AppError, extra: Record<string, string>): void {
  if (response.headersSent || response.destroyed) {
    if (!response.writableEnded) response.destroy();
    return;
  }
  const rendered = adapter.renderError(error);
  response.writeHead(rendered.status, { ...rendered.headers, "x-request-id": id, ...extra });
  response.end(rendered.body);
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
