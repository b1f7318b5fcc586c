import { dependencyHint } from "../../app-health.js";
import { buildApp } from "../../app.js";
import { signDevToken } from "../../auth/dev-token.js";
import type { Config } from "../../config/config-schema.js";
import { DependencyUnavailableError } from "../../lib/errors.js";
import { createLogger } from "../../lib/logger.js";
import { MasterKeyMismatchError } from "../../vault/master-key-check.js";
import { commitDevSecrets } from "../commit-dev-secrets.js";
import { loadRuntimeConfig } from "../load-runtime-config.js";

/** How long in-flight requests get to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 30_000;

export async function runServeCommand(): Promise<number> {
  const runtime = loadRuntimeConfig();
  if (runtime === undefined) return 1;
  const { config } = runtime;
  let app;
  try {
    await commitDevSecrets(runtime);
    app = await buildApp(config);
  } catch (error) {
    if (error instanceof MasterKeyMismatchError) {
      process.stderr.write(`Keyport cannot start: ${error.message}\n`);
      return 1;
    }
    if (error instanceof DependencyUnavailableError) {
      logUnreachableAtStart(config, error);
      return 1;
    }
    throw error;
  }
  let address: string;
  try {
    address = await app.http.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    const code = (error as { code?: unknown }).code;
    process.stderr.write(
      code === "EADDRINUSE"
        ? `Keyport cannot start: port ${config.port} on ${config.host} is already in use; set PORT to another port.\n`
        : `Keyport cannot start: cannot listen on ${config.host}:${config.port} (${String(code ?? "unknown error")}).\n`,
    );
    return 1;
  }
  app.logger.info({ address, database: config.database.kind }, "keyport listening");
  if (config.nodeEnv !== "production") process.stdout.write(await developmentBanner(config, address));

  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      app.logger.info({ signal }, "shutting down");
      const deadline = setTimeout(() => {
        app.logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, "shutdown deadline passed; closing the remaining connections");
        app.http.server.closeAllConnections();
        resolve(1);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      app.close().then(
        () => resolve(0),
        (error: unknown) => {
          app.logger.error({ err: error }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}

/**
 * One JSON line, in the log's own format, saying which dependency and what to check; no stack
 * trace (the reason is the driver's message, scrubbed).
 */
function logUnreachableAtStart(config: Config, error: DependencyUnavailableError): void {
  const name = error.dependency === "redis" ? "Redis" : config.database.kind === "sqlite" ? "the SQLite database" : "PostgreSQL";
  createLogger({ level: config.logLevel }).fatal(
    { dependency: error.dependency, reason: error.internal.reason, check: dependencyHint(config, error.dependency) },
    `Keyport cannot start: ${name} is not reachable`,
  );
}

async function developmentBanner(config: Config, address: string): Promise<string> {
  const verifier = config.jwt.verifier;
  if (verifier.kind !== "secret") return `\nKeyport is running at ${address}\n\n`;
  // A day, unless the configured maximum token lifetime is shorter.
  const lifetimeSeconds = Math.min(24 * 3600, config.jwt.maxTtlSeconds);
  const token = await signDevToken({
    secret: verifier.secret,
    algorithm: verifier.algorithm,
    sub: "dev-user",
    tier: "premium",
    expiresInSeconds: lifetimeSeconds,
    ...(config.jwt.issuer === undefined ? {} : { issuer: config.jwt.issuer }),
    ...(config.jwt.audience === undefined ? {} : { audience: config.jwt.audience }),
  });
  const demoKey = `sk-proj-demo${Date.now().toString(36)}${"x".repeat(40)}`;
  const auth = `-H "Authorization: Bearer ${token}"`;
  return [
    "",
    `Keyport is running at ${address} (database: ${config.database.kind === "sqlite" ? config.database.path : "PostgreSQL"})`,
    "",
    `A development token for user:dev-user (tier premium, valid ${formatLifetime(lifetimeSeconds)}), and two requests to try:`,
    "",
    `curl -s -X POST ${address}/api/v1/api-keys ${auth} -H 'content-type: application/json' -d '{"provider":"openai","apiKey":"${demoKey}","label":"Demo"}'`,
    "",
    `curl -s ${address}/api/v1/api-keys ${auth}`,
    "",
    `More tokens: npx keyport token --sub <user> --tier premium. API docs: ${address}/docs`,
    "",
  ].join("\n");
}

function formatLifetime(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
