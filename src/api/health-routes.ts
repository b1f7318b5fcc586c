import type { FastifyInstance } from "fastify";

/** Liveness and readiness. Readiness makes one round trip to the database. */
export function registerHealthRoutes(app: FastifyInstance, { ping }: { ping: () => Promise<void> }): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (request, reply) => {
    try {
      await ping();
      return { status: "ready", checks: { database: "ok" } };
    } catch (error) {
      request.log.warn({ err: error }, "readiness check failed");
      return reply.status(503).send({ status: "not_ready", checks: { database: "unreachable" } });
    }
  });
}
