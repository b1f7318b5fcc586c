import type { FastifyInstance } from "fastify";
import type { DestinationStream, Logger } from "pino";
import { Agent } from "undici";
import { createAuditLog } from "./audit/audit-log.js";
import { createJwtVerifier } from "./auth/jwt-verifier.js";
import type { Config } from "./config/config-schema.js";
import { createEnvelope } from "./crypto/envelope.js";
import { createMasterKeyring } from "./crypto/master-keys.js";
import { registerAuditRoutes } from "./api/audit-routes.js";
import { createAuthenticate } from "./api/authenticate.js";
import { registerHealthRoutes } from "./api/health-routes.js";
import { createHttpServer } from "./api/http-server.js";
import { registerKeyRoutes } from "./api/key-routes.js";
import { type Clock, systemClock } from "./lib/clock.js";
import { createLogger } from "./lib/logger.js";
import { createMemoryRateLimiter } from "./limits/memory-rate-limiter.js";
import { checkCommonKeyFormat, normalizeKey } from "./providers/key-format.js";
import { createProviderRegistry } from "./providers/registry.js";
import type { ProviderRegistry } from "./providers/spec.js";
import type { Store } from "./store/ports.js";
import { createPostgresStore } from "./store/postgres/create-postgres-store.js";
import { createSqliteStore } from "./store/sqlite/create-sqlite-store.js";
import { createCreateKey } from "./vault/create-key.js";
import { createDataKeys } from "./vault/data-keys.js";
import { createKeyAdmission } from "./vault/key-admission.js";
import { createKeyChecks } from "./vault/key-checks.js";
import { createKeyService } from "./vault/key-service.js";
import { checkMasterKeys } from "./vault/master-key-check.js";

export const VERSION = "0.1.0";

export type AppOverrides = {
  /** Where log lines go (tests capture them); default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** PostgreSQL schema to use instead of `public` (isolated test runs). */
  postgresSchema?: string;
};

export type KeyportApp = {
  http: FastifyInstance;
  store: Store;
  logger: Logger;
  close(): Promise<void>;
};

/** Opens the store named by the configuration. The only place that picks a concrete database. */
export function openStore(config: Config, overrides: Pick<AppOverrides, "postgresSchema"> = {}): Promise<Store> {
  return config.database.kind === "sqlite"
    ? createSqliteStore({ path: config.database.path })
    : createPostgresStore({
        url: config.database.url.reveal(),
        ...(overrides.postgresSchema === undefined ? {} : { schema: overrides.postgresSchema }),
      });
}

/**
 * The composition root: builds every service once and wires it into the HTTP server. Nothing
 * else in `src/` knows the concrete store, HTTP client or provider adapters.
 */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<KeyportApp> {
  const clock = overrides.clock ?? systemClock;
  const logger = createLogger({
    level: config.logLevel,
    ...(overrides.logDestination === undefined ? {} : { destination: overrides.logDestination }),
  });
  const store = await openStore(config, overrides);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 });
  try {
    const keyring = createMasterKeyring({
      current: config.encryption.current.reveal(),
      previous: config.encryption.previous.map((key) => key.reveal()),
    });
    await checkMasterKeys({ masterKeys: store.masterKeys, dataKeys: store.dataKeys, clock }, keyring);
    const envelope = createEnvelope(keyring);

    const providers: ProviderRegistry = createProviderRegistry({
      openai: { baseUrl: config.providers.openai.baseUrl, timeoutMs: config.providerTimeoutMs, dispatcher },
      anthropic: { baseUrl: config.providers.anthropic.baseUrl, timeoutMs: config.providerTimeoutMs, dispatcher },
    });
    const auditLog = createAuditLog({ audit: store.audit, clock });
    const dataKeys = createDataKeys({ dataKeys: store.dataKeys, envelope, clock });
    const admission = createKeyAdmission({
      checks: createKeyChecks({ providers, normalizeKey, checkCommonKeyFormat }),
      keyCheckLimiter: createMemoryRateLimiter({ points: config.keyChecksPerMinute, durationSeconds: 60, keyPrefix: "key-checks" }),
      onRejectedKey: config.onRejectedKey,
    });
    const keyService = createKeyService({ keys: store.keys, dataKeys, envelope, admission, auditLog, clock });
    const createKey = createCreateKey({
      keys: store.keys,
      idempotency: store.idempotency,
      dataKeys,
      envelope,
      admission,
      auditLog,
      clock,
    });
    const verifier = createJwtVerifier({ jwt: config.jwt, tiers: config.tiers, defaultTier: config.defaultTier });
    // A bad public key stops the start instead of failing every request later.
    await verifier.ready();

    const http = await createHttpServer({
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
      trustProxy: config.trustProxy,
      version: VERSION,
    });
    registerHealthRoutes(http, { ping: () => store.ping() });
    await http.register(async (scope) => {
      // onRequest: an unauthenticated request is refused before its body is even parsed.
      scope.addHook("onRequest", createAuthenticate(verifier));
      registerKeyRoutes(scope, { keyService, createKey });
      registerAuditRoutes(scope, { auditLog });
    });

    let closed = false;
    return {
      http,
      store,
      logger,
      async close() {
        if (closed) return;
        closed = true;
        await http.close();
        await dispatcher.close();
        await store.close();
      },
    };
  } catch (error) {
    await dispatcher.close();
    await store.close();
    throw error;
  }
}
