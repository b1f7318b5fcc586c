import path from "node:path";
import { parseArgs } from "node:util";
import { dependencyHint } from "../../app-health.js";
import { buildApp, type KeyportApp, StartRefusedError } from "../../app.js";
import { signDevToken } from "../../auth/dev-token.js";
import type { Config } from "../../config/config-schema.js";
import { readProcessEnv } from "../../config/process-env.js";
import { DependencyUnavailableError } from "../../lib/errors.js";
import { createLogger } from "../../lib/logger.js";
import { portalLinkUrl } from "../../portal/portal-sessions.js";
import { MasterKeyMismatchError } from "../../vault/master-key-check.js";
import { developmentBanner } from "../banner.js";
import { badUsage } from "../command-help.js";
import { commitDevSecrets } from "../commit-dev-secrets.js";
import { type Demo, DEMO_OPENAI_KEY, startDemo } from "../demo.js";
import { ADMIN_TOKEN_FILE } from "../dev-secrets.js";
import { loadRuntimeConfig } from "../load-runtime-config.js";

/**
 * What a shutdown may take beyond its delay and drain timeout: the error events of cut streams,
 * the last usage batch, closing the pools. Whatever the flush misses is in the usage journal.
 */
const SHUTDOWN_FLUSH_MS = 4_000;
/** The development banner's Settings link lasts longer than an operator's: it is read, then clicked. */
const BANNER_LINK_TTL_SECONDS = 3600;
/** The user the development banner is for. */
const DEMO_SUB = "demo";
const DEMO_TIER = "premium";

export async function runServeCommand(argv: string[] = []): Promise<number> {
  let isDemo: boolean;
  try {
    isDemo = parseArgs({ args: argv, options: { demo: { type: "boolean", default: false } }, strict: true }).values.demo;
  } catch (error) {
    process.stderr.write(badUsage("serve", error instanceof Error ? error.message : "bad arguments"));
    return 2;
  }
  const processEnv = readProcessEnv();
  if (isDemo && processEnv.NODE_ENV === "production") {
    process.stderr.write("keyport serve --demo simulates the providers and is not for production; leave out --demo.\n");
    return 2;
  }
  const demo = isDemo ? await startDemo(processEnv) : undefined;
  const env = demo?.env ?? processEnv;
  const runtime = loadRuntimeConfig({ env });
  if (runtime === undefined) {
    await demo?.mock.close();
    return 1;
  }
  const { config } = runtime;
  let app: KeyportApp;
  try {
    await commitDevSecrets(runtime);
    app = await buildApp(config);
  } catch (error) {
    await demo?.mock.close();
    if (error instanceof MasterKeyMismatchError || error instanceof StartRefusedError) {
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
    await demo?.mock.close();
    const code = (error as { code?: unknown }).code;
    process.stderr.write(
      code === "EADDRINUSE"
        ? `Keyport cannot start: port ${config.port} on ${config.host} is already in use; set PORT to another port.\n`
        : `Keyport cannot start: cannot listen on ${config.host}:${config.port} (${String(code ?? "unknown error")}).\n`,
    );
    return 1;
  }
  app.logger.info({ address, database: config.database.kind, demo: isDemo }, "keyport listening");
  if (config.nodeEnv !== "production") {
    const adminTokenFromFile = (env.KEYPORT_ADMIN_TOKEN ?? "").trim() === "";
    process.stdout.write(await banner(config, app, address, demo, adminTokenFromFile));
  }

  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      // Ctrl-C at a terminal stops at once; the delay is for SIGTERM from an orchestrator.
      const skipDelay = signal === "SIGINT";
      const deadlineMs = (skipDelay ? 0 : config.shutdown.delayMs) + config.shutdown.drainTimeoutMs + SHUTDOWN_FLUSH_MS;
      app.logger.info({ signal, deadlineMs }, "shutting down");
      const deadline = setTimeout(() => {
        app.logger.error({ deadlineMs }, "shutdown deadline passed; closing the remaining connections");
        app.http.server.closeAllConnections();
        resolve(1);
      }, deadlineMs);
      deadline.unref();
      app
        .close({ skipDelay })
        .then(() => demo?.mock.close())
        .then(
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

async function banner(config: Config, app: KeyportApp, address: string, demo: Demo | undefined, adminTokenFromFile: boolean): Promise<string> {
  const verifier = config.jwt.verifier;
  if (verifier.kind !== "secret") return `\nKeyport is running at ${address}\n\n`;
  // A day, unless the configured maximum token lifetime is shorter.
  const tokenLifetimeSeconds = Math.min(24 * 3600, config.jwt.maxTtlSeconds);
  const token = await signDevToken({
    secret: verifier.secret,
    algorithm: verifier.algorithm,
    sub: DEMO_SUB,
    tier: DEMO_TIER,
    expiresInSeconds: tokenLifetimeSeconds,
    ...(config.jwt.issuer === undefined ? {} : { issuer: config.jwt.issuer }),
    ...(config.jwt.audience === undefined ? {} : { audience: config.jwt.audience }),
  });
  const link = await app.portal.createLink(
    { owner: `user:${DEMO_SUB}`, sub: DEMO_SUB, tier: DEMO_TIER, returnUrl: null, theme: { productName: demo === undefined ? "Keyport" : "Keyport demo" } },
    BANNER_LINK_TTL_SECONDS,
  );
  return developmentBanner({
    config,
    address,
    portalLink: { url: portalLinkUrl(config.portal.publicUrl ?? address, link.token), expiresAt: link.expiresAt },
    token,
    tokenLifetimeSeconds,
    sub: DEMO_SUB,
    tier: DEMO_TIER,
    ...(demo === undefined ? {} : { demo: { providerUrl: demo.mock.url, openAiKey: DEMO_OPENAI_KEY } }),
    ...(adminTokenFromFile ? { adminTokenFile: path.join(config.dataDir, ADMIN_TOKEN_FILE) } : {}),
  });
}
