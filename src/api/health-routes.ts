import type { FastifyInstance } from "fastify";

/** A dependency readiness depends on: resolves when it answers. */
export type ReadinessCheck = () => Promise<unknown>;

/** Liveness, and readiness with one round trip to each dependency (database, Redis when used). */
export function registerHealthRoutes(app: FastifyInstance, { checks }: { checks: Readonly<Record<string, ReadinessCheck>> }): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (request, reply) => {
    const results: Record<string, "ok" | "unreachable"> = {};
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await check();
          results[name] = "ok";
        } catch (error) {
          request.log.warn({ err: error, dependency: name }, "readiness check failed");
          results[name] = "unreachable";
        }
      }),
    );
    const ready = Object.values(results).every((result) => result === "ok");
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready", checks: results });
  });
}
