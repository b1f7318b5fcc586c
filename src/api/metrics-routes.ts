import type { FastifyInstance, onRequestHookHandler } from "fastify";

export type MetricsRouteDeps = {
  /** The Prometheus exposition text and its content type. */
  scrape: () => Promise<{ contentType: string; body: string }>;
  /** The operator check (`KEYPORT_METRICS_AUTH=operator`); `undefined`: open. */
  authenticate: onRequestHookHandler | undefined;
};

/** `GET /metrics` on the main port (when no metrics port of its own is configured). Not in the OpenAPI document. */
export async function registerMetricsRoute(app: FastifyInstance, deps: MetricsRouteDeps): Promise<void> {
  await app.register(async (scope) => {
    if (deps.authenticate !== undefined) scope.addHook("onRequest", deps.authenticate);
    scope.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
      const { contentType, body } = await deps.scrape();
      return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
    });
  });
}
