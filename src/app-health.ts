import type { Logger } from "pino";
import type { Config } from "./config/config-schema.js";
import type { Dependency } from "./lib/errors.js";
import type { HealthRegistry, HealthSnapshot } from "./lib/health-registry.js";

// Part of the composition root: what the start and the logs say about Keyport's dependencies.

/** Logs each change of a dependency's state once (not every failed check). */
export function logHealthChanges(health: HealthRegistry, logger: Logger): void {
  let previous: HealthSnapshot = health.snapshot();
  health.onChange((snapshot) => {
    for (const dependency of ["database", "redis"] as const) {
      const before = previous.dependencies[dependency].status;
      const after = snapshot.dependencies[dependency].status;
      if (before === after) continue;
      if (after === "unreachable") {
        const degraded = snapshot.degraded.map((item) => item.name);
        logger.warn({ dependency, degraded, ready: snapshot.ready }, `${dependencyName(dependency)} is unreachable`);
      } else {
        logger.info({ dependency, ready: snapshot.ready }, `${dependencyName(dependency)} is reachable again`);
      }
    }
    previous = snapshot;
  });
}

function dependencyName(dependency: Dependency): string {
  return dependency === "redis" ? "Redis" : "The database";
}

/** What an operator should check when `dependency` cannot be reached; never a password. */
export function dependencyHint(config: Config, dependency: Dependency): string {
  if (dependency === "redis") {
    return (
      `Check REDIS_URL (${endpointOf(config.redisUrl?.reveal())}): is Redis running and reachable from this host, and does it accept this password? ` +
      "With KEYPORT_RATE_LIMIT_ON_ERROR=open (the default) Keyport starts without Redis and serves degraded until it answers."
    );
  }
  if (config.database.kind === "sqlite") return `Check that ${config.database.path} and its directory are readable and writable.`;
  const endpoint = endpointOf(config.database.url.reveal());
  return `Check DATABASE_URL (${endpoint}): is PostgreSQL running and reachable from this host, and does it accept this user and password?`;
}

/** `scheme://host:port/path` of a connection URL, without user or password. */
function endpointOf(url: string | undefined): string {
  if (url === undefined) return "not set";
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    return "not a valid URL";
  }
}
