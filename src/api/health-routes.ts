import type { FastifyInstance } from "fastify";
import type { HealthRegistry } from "../lib/health-registry.js";

export type HealthRouteDeps = {
  registry: HealthRegistry;
  /** Asks every dependency once and records the answers in `registry`. */
  probe: () => Promise<void>;
};

/**
 * Liveness, and readiness. `/readyz` asks each dependency once, then answers 200 when the
 * instance can serve (its body lists what runs degraded) and 503 only when it cannot; the
 * rules are in `HealthRegistry`.
 */
export function registerHealthRoutes(app: FastifyInstance, { registry, probe }: HealthRouteDeps): void {
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
    await probe();
    const snapshot = registry.snapshot();
    const configured = Object.entries(snapshot.dependencies).filter(([, state]) => state.status !== "not_configured");
    const checks = Object.fromEntries(configured.map(([name, state]) => [name, state.status]));
    return reply.status(snapshot.ready ? 200 : 503).send({
      status: snapshot.status,
      ready: snapshot.ready,
      checks,
      degraded: snapshot.degraded,
      ...(snapshot.ready ? {} : { notReadyBecause: snapshot.notReadyBecause }),
      pendingAnnouncements: snapshot.pendingAnnouncements,
    });
  });
}
