import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { DestinationStream, Logger } from "pino";
import { Agent } from "undici";
import { registerAuditRoutes } from "./api/audit-routes.js";
import { createAuthenticate } from "./api/authenticate.js";
import { registerHealthRoutes } from "./api/health-routes.js";
import { createHttpServer, logCompletedRequests, type PreRouter } from "./api/http-server.js";
import { registerKeyRoutes } from "./api/key-routes.js";
import { registerLimitsRoutes } from "./api/limits-routes.js";
import { registerMetricsRoute } from "./api/metrics-routes.js";
import { registerNotificationRoutes } from "./api/notification-routes.js";
import { NOTIFICATION_SCHEMAS } from "./api/notification-schemas.js";
import { createNotificationServices } from "./app-notifications.js";
import { createKeyRouting } from "./api/key-routing-view.js";
import { createOperatorAuthenticate } from "./api/operator-authenticate.js";
import { createPortalAuthenticate } from "./api/portal-authenticate.js";
import { registerPortalPageRoutes } from "./api/portal-page-routes.js";
import { registerOperatorRoutes } from "./api/operator-routes.js";
import { registerOperatorPortalRoutes, registerPortalSessionRoutes } from "./api/portal-session-routes.js";
import { registerUsageRoutes } from "./api/usage-routes.js";
import { logHealthChanges } from "./app-health.js";
import { createAuditLog } from "./audit/audit-log.js";
import { createProxyTrust } from "./auth/client-address.js";
import { createBudgetNotices } from "./budgets/budget-notices.js";
import { createDbLedger, keyCounter } from "./budgets/ledger.js";
import { createMemoryLedger } from "./budgets/memory-ledger.js";
import { createLimitsCache } from "./budgets/limits-cache.js";
import { createLimitsService, type LimitsService } from "./budgets/limits-service.js";
import type { CapDescription } from "./budgets/caps.js";
import { createPeriodClock, monthOf } from "./budgets/period.js";
import { createSettlementBatcher } from "./budgets/settlements.js";
import { createJwtVerifier } from "./auth/jwt-verifier.js";
import { createOperatorTokenCheck } from "./auth/operator-token.js";
import { readBearerToken } from "./auth/read-credential.js";
import { createTokenAuthenticator } from "./auth/token-authenticator.js";
import { createMemoryCacheCoordinator } from "./cache/memory-coordinator.js";
import { createKeyCache } from "./cache/key-cache.js";
import type { Config } from "./config/config-schema.js";
import { createEnvelope } from "./crypto/envelope.js";
import { createMasterKeyring } from "./crypto/master-keys.js";
import { createAccessLog } from "./gateway/access-log.js";
import { createGatewayDispatch } from "./gateway/gateway-dispatch.js";
import type { PipelineDeps } from "./gateway/pipeline.js";
import { createCallBudget } from "./gateway/steps/budget.js";
import { type ActiveKeyRecord, createKeySelector } from "./gateway/steps/select-key.js";
import { type Clock, systemClock } from "./lib/clock.js";
import { createDependencyProbe, createHealthRegistry, type HealthRegistry } from "./lib/health-registry.js";
import { createLifecycle } from "./lib/lifecycle.js";
import { createLogger } from "./lib/logger.js";
import { createAuthFailureThrottle } from "./limits/auth-failure-throttle.js";
import { createMemoryRateLimiter } from "./limits/memory-rate-limiter.js";
import { createMemoryTierLimiter } from "./limits/memory-tier-limiter.js";
import { startMetricsServer } from "./metrics/metrics-server.js";
import { createPrometheusMetrics } from "./metrics/prometheus-metrics.js";
import { loadPageAssets } from "./portal/page-assets.js";
import { pageSecurityHeaders } from "./portal/page-headers.js";
import { createPortalSessions, type PortalSessions } from "./portal/portal-sessions.js";
import { createSessionCookie } from "./portal/session-cookie.js";
import { checkCommonKeyFormat, normalizeKey } from "./providers/key-format.js";
import { createProviderRegistry } from "./providers/registry.js";
import type { KeyRepo, Store } from "./store/ports.js";
import { costOf, loadPriceTable } from "./usage/pricing.js";
import { openUsageJournal, replayUsageJournals, type UsageJournal } from "./usage/usage-journal.js";
import { createUsageRecorder } from "./usage/usage-recorder.js";
import { createOperatorUsageReport } from "./usage/operator-usage-report.js";
import { createUsageReport } from "./usage/usage-report.js";
import { createCreateKey } from "./vault/create-key.js";
import { createDataKeys } from "./vault/data-keys.js";
import { withCacheInvalidation } from "./vault/invalidating-key-repo.js";
import { createKeyAdmission } from "./vault/key-admission.js";
import { createKeyChecks } from "./vault/key-checks.js";
import { createKeyHealth } from "./vault/key-health.js";
import { createKeyService } from "./vault/key-service.js";
import { createOperatorKeys } from "./vault/operator-keys.js";
import { checkMasterKeys } from "./vault/master-key-check.js";

export const VERSION = "0.1.0";

/** The usage journal's directory, under the data directory. */
export const USAGE_JOURNAL_DIR = "usage-journal";

/** After the drain deadline cut the last streams: how long their error events get to go out. */
const CUT_STREAMS_GRACE_MS = 1_000;

/** How long settlements of budget reservations are gathered before they are applied. */
const SETTLEMENT_INTERVAL_MS = 200;

/** How often dependencies are asked for their health between `/readyz` calls. */
const HEALTH_PROBE_INTERVAL_MS = 5_000;

/** A start refused for a reason the operator fixes in the environment; `serve` prints the message alone. */
export class StartRefusedError extends Error {
  override readonly name = "StartRefusedError";
}

export type AppOverrides = {
  /** Where log lines go (tests capture them); default stdout. */
  logDestination?: DestinationStream;
  clock?: Clock;
  /** PostgreSQL schema to use instead of `public` (isolated test runs). */
  postgresSchema?: string;
  /** The built Settings page; default dist/web. */
  pageDir?: string;
};

export type KeyportApp = {
  http: FastifyInstance;
  store: Store;
  logger: Logger;
  /** Dependency states, degradations and readiness (what `/readyz` shows; for metrics too). */
  health: HealthRegistry;
  /** Portal links (the development banner prints one). */
  portal: PortalSessions;
  /** Where `GET /metrics` listens when it has a port of its own (`KEYPORT_METRICS_PORT`). */
  metricsUrl: string | undefined;
  /**
   * Fails readiness, keeps serving for the shutdown delay (`skipDelay` leaves it out: an
   * interactive Ctrl-C), stops accepting, lets in-flight calls and streams finish until the drain
   * timeout, cuts the streams still running, flushes usage, closes pools.
   */
  close(options?: { skipDelay?: boolean }): Promise<void>;
};

/** Opens the store named by the configuration. The only place that picks a concrete database. */
export async function openStore(config: Config, overrides: Pick<AppOverrides, "postgresSchema"> = {}): Promise<Store> {
  // Loaded on demand: a single SQLite instance never loads the PostgreSQL driver (memory).
  if (config.database.kind === "sqlite") {
    const { createSqliteStore } = await import("./store/sqlite/create-sqlite-store.js");
    return createSqliteStore({ path: config.database.path });
  }
  const { createPostgresStore } = await import("./store/postgres/create-postgres-store.js");
  return createPostgresStore({
    url: config.database.url.reveal(),
    ...(overrides.postgresSchema === undefined ? {} : { schema: overrides.postgresSchema }),
  });
}

/**
 * The composition root: builds every service once and wires it into the HTTP server. Nothing
 * else in `src/` knows the concrete store, Redis, HTTP client or provider adapters.
 */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<KeyportApp> {
  const clock = overrides.clock ?? systemClock;
  const logger = createLogger({
    level: config.logLevel,
    ...(overrides.logDestination === undefined ? {} : { destination: overrides.logDestination }),
  });
  // Resources are closed in reverse order of creation, also when the start fails halfway.
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch((error: unknown) => logger.warn({ err: error }, "close failed"));
  };
  const shutdown = { ...config.shutdown, skipDelay: false };
  const health = createHealthRegistry({ usesRedis: config.redisUrl !== undefined, rateLimitOnError: config.gateway.rateLimitOnError, clock });
  try {
    const store = await openStore(config, overrides);
    closers.push(() => store.close());
    const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 });
    closers.push(() => dispatcher.close());
    // Loaded on demand: a single instance without Redis never loads ioredis.
    const redis =
      config.redisUrl === undefined
        ? undefined
        : await (await import("./app-redis.js")).startRedis(config, config.redisUrl.reveal(), health, logger);
    if (redis !== undefined) closers.push(redis.quit);
    const keyring = createMasterKeyring({
      current: config.encryption.current.reveal(),
      previous: config.encryption.previous.map((key) => key.reveal()),
    });
    await checkMasterKeys({ masterKeys: store.masterKeys, dataKeys: store.dataKeys, clock }, keyring);
    const envelope = createEnvelope(keyring);

    const coordinator = redis?.coordinator ?? createMemoryCacheCoordinator();
    closers.push(() => coordinator.close());
    const keyCache = createKeyCache<ActiveKeyRecord>({
      maxEntries: 10_000,
      ttlMs: config.gateway.keyCacheTtlMs,
      clock,
      coordinator,
      onCoordinatorError: (error) => logger.warn({ err: error }, "key cache coordinator unavailable; reading the database"),
      onPendingAnnouncements: (count) => health.setPendingAnnouncements(count),
    });
    closers.push(() => keyCache.close());
    // The owner's own changes are refused when the other instances cannot be told about them.
    const keys = withCacheInvalidation(store.keys, (owner, write) => keyCache.change(owner, write));
    // Status changes from what a provider answered cannot be refused (the provider said so): they
    // are made, and announced once Redis answers; until then another instance may try the key
    // and learn the same from the provider.
    const statusKeys = withCacheInvalidation(store.keys, (owner, write) => keyCache.change(owner, write, { whenUnannounced: "proceed" }));

    // Spend limits: counters in Redis across instances, in the database for PostgreSQL alone, in
    // memory on SQLite (one instance; the usage journal makes them durable).
    const period = createPeriodClock(() => clock.now());
    const ledger = redis?.budgetLedger(store.budgets) ?? (store.dialect === "sqlite" ? createMemoryLedger(store.budgets) : createDbLedger(store.budgets));
    const limitsCache = createLimitsCache({
      load: (owner) => store.ownerLimits.find(owner),
      ttlMs: config.gateway.keyCacheTtlMs,
      clock,
      onInvalidate: (handler) => coordinator.onInvalidate(handler),
      onInvalidateAll: (handler) => coordinator.onInvalidateAll(handler),
    });
    // A key whose limit is removed stops counting: forget its counter, so a limit set again
    // later starts from the month's records.
    const budgetedKeys: KeyRepo = {
      ...keys,
      async update(owner, id, patch, at, events) {
        const row = await keys.update(owner, id, patch, at, events);
        if (row !== undefined && patch.monthlyLimitNanoUsd === null) await ledger.drop(owner, period().month, keyCounter(id));
        return row;
      },
    };
    // Bound late: the limits service needs the notification services' URL check, and they need it.
    const late: { limits?: LimitsService } = {};

    // Health and the usage writer are read when scraped (the recorder exists by then).
    const metrics = createPrometheusMetrics({ health, usageStats: () => recorder.stats() });
    const auditLog = createAuditLog({ audit: store.audit, clock });
    const keyHealth = createKeyHealth({ keys: statusKeys, auditLog, clock, metrics });
    const dataKeys = createDataKeys({ dataKeys: store.dataKeys, keys, keyHealth, envelope, clock });
    // One adapter per provider, with its one upstream client: key checks and the gateway share both.
    const providers = createProviderRegistry({
      dispatcher,
      keyCheckTimeoutMs: config.providerTimeoutMs,
      openai: { baseUrl: config.providers.openai.baseUrl, platformAccount: config.platformOpenAiAccount },
      anthropic: { baseUrl: config.providers.anthropic.baseUrl },
    });
    const admission = createKeyAdmission({
      checks: createKeyChecks({ providers, normalizeKey, checkCommonKeyFormat }),
      // Shared through Redis when configured: per instance, N instances would allow N times the limit.
      keyCheckLimiter:
        redis?.rateLimiter({ name: "key-checks", points: config.keyChecksPerMinute, durationSeconds: 60 }) ??
        createMemoryRateLimiter({ points: config.keyChecksPerMinute, durationSeconds: 60, keyPrefix: "key-checks" }),
      onRejectedKey: config.onRejectedKey,
    });
    const notifications = await createNotificationServices(config, {
      store,
      dataKeys,
      envelope,
      clock,
      logger,
      // Owners cannot set a webhook URL or a notification email until the limits resource
      // exists: until then their own targets are skipped and the operator's webhook still runs.
      settings: { find: async (owner) => late.limits?.notificationSettings(owner) ?? { webhookUrl: null, notifyEmail: null } },
      version: VERSION,
    });
    closers.push(() => notifications.close());
    const limitsService = createLimitsService({
      repo: store.ownerLimits,
      keys: store.keys,
      ledger,
      tiers: config.tiers,
      period,
      clock,
      validateWebhookUrl: (url) => notifications.validateWebhookUrl(url),
      // Through the key cache's change: every instance is told to drop the owner's cached limits.
      change: (owner, write) =>
        keyCache.change(owner, async () => {
          try {
            return await write();
          } finally {
            limitsCache.forget(owner);
          }
        }),
    });
    late.limits = limitsService;
    const keyService = createKeyService({ keys: budgetedKeys, dataKeys, envelope, admission, auditLog, keyHealth, clock });
    const createKey = createCreateKey({ keys, idempotency: store.idempotency, dataKeys, envelope, admission, auditLog, clock });
    const verifier = createJwtVerifier({ jwt: config.jwt, tiers: config.tiers, defaultTier: config.defaultTier, clock });
    // A bad public key stops the start instead of failing every request later.
    await verifier.ready();
    const trust = createProxyTrust(config.trustProxy);
    const failedAuthentications = { name: "auth-failures", points: config.authFailuresPerMinute, durationSeconds: 60 };
    const authThrottle = createAuthFailureThrottle({
      // Shared through Redis when configured, so N instances do not allow N times the failures.
      failures:
        redis?.rateLimiter(failedAuthentications) ??
        createMemoryRateLimiter({ points: failedAuthentications.points, durationSeconds: 60, keyPrefix: failedAuthentications.name }),
      ...(redis === undefined ? {} : { broadcast: redis.blockBroadcast("auth-blocks") }),
      clock,
    });
    closers.push(() => authThrottle.close());
    const authenticator = createTokenAuthenticator({
      verifier,
      throttle: authThrottle,
      trust,
      onThrottleError: (error) => logger.warn({ err: error }, "failed authentication not counted: the throttle's backend is unavailable"),
    });

    const tierLimiter = redis?.tierLimiter ?? createMemoryTierLimiter({ clock });
    closers.push(() => tierLimiter.close());
    const priceTable = loadPriceTable(config.pricingFile === undefined ? {} : { file: config.pricingFile });
    // Calls a killed instance never recorded become records before this one serves any.
    const journalDirectory = path.join(config.dataDir, USAGE_JOURNAL_DIR);
    const recorder = createUsageRecorder({ usage: store.usage, logger });
    let journal: UsageJournal;
    try {
      const replayed = await replayUsageJournals(journalDirectory, (records) => store.usage.insertBatch(records));
      if (replayed.files > 0) logger.warn(replayed, "usage journal replayed: calls of an instance that stopped without recording them");
      if (replayed.foreign > 0) logger.warn({ directory: journalDirectory, files: replayed.foreign }, "usage journal files of another host left alone: give each instance its own KEYPORT_DATA_DIR");
      journal = openUsageJournal({
        directory: journalDirectory,
        flush: () => recorder.flush(),
        onError: (error, message) => logger.error({ err: error }, message),
      });
    } catch (error) {
      const { code, syscall } = error as { code?: unknown; syscall?: unknown };
      // A file-system error: running without the journal would silently give up its guarantee.
      if (typeof syscall === "string") {
        throw new StartRefusedError(`the usage journal cannot be written in ${journalDirectory} (${String(code)}); KEYPORT_DATA_DIR must be a directory Keyport can write.`);
      }
      throw error;
    }
    closers.push(() => journal.close({ committed: false }));
    const lifecycle = createLifecycle();
    const selector = createKeySelector({
      keys,
      dataKeys: store.dataKeys,
      envelope,
      cache: keyCache,
      platformKeys: config.platformKeys,
      tiers: config.tiers,
      keyHealth,
      upgrade: config.upgrade,
    });
    const notices = createBudgetNotices({ budgets: store.budgets, clock, onError: (error) => logger.warn({ err: error }, "budget notification not recorded") });
    const settlements = createSettlementBatcher<CapDescription>({
      adjust: (owner, month, counters, delta) => ledger.adjust(owner, month, counters, delta),
      intervalMs: SETTLEMENT_INTERVAL_MS,
      onCapPassed: (owner, month, cap, spent) => notices.exceeded(owner, monthOf(new Date(`${month}-01T00:00:00.000Z`)), cap, spent),
      onError: (error) => logger.warn({ err: error }, "budget settlement failed; retried at the next flush (the reservation stays counted meanwhile)"),
    });
    const budget = createCallBudget({
      ledger,
      settlements,
      limits: limitsCache,
      tiers: config.tiers,
      pricing: { pricesFor: (provider, model) => priceTable.pricesFor(provider, model), costOf },
      period,
      notices,
    });
    const pipeline: PipelineDeps = {
      lifecycle,
      authenticate: { authenticator },
      selector,
      limit: { tierLimiter, tiers: config.tiers, rateLimitOnError: config.gateway.rateLimitOnError, upgrade: config.upgrade },
      budget,
      forward: {
        retryPolicy: { maxRetries: config.gateway.retries, baseDelayMs: 250, maxDelayMs: 4_000, retryAfterCapMs: config.gateway.retryAfterCapMs },
        timeouts: { headersTimeoutMs: config.gateway.headersTimeoutMs, bodyTimeoutMs: config.gateway.bodyTimeoutMs },
        platformBetas: new Set(config.platformBetas),
        metrics,
      },
      fallBack: { keyHealth, auditLog, selector, fallbackOnInvalid: config.gateway.fallbackOnInvalid },
      relay: { platformSecrets: Object.values(config.platformKeys).filter((key) => key !== undefined), streams: lifecycle },
      record: {
        recordUsage: (record) => recorder.record(record),
        pricing: { pricesFor: (provider, model) => priceTable.pricesFor(provider, model), costOf },
        budget,
        journal,
        // No access-log listener at all when its lines would be dropped (LOG_LEVEL above info).
        onCallEnd: [
          metrics.callEnded,
          ...(config.observability.accessLog && logger.isLevelEnabled("info") ? [createAccessLog(logger.child({}, { redact: [] }))] : []),
        ],
      },
    };

    const portal = createPortalSessions({
      repo: store.portalSessions,
      clock,
      linkTtlSeconds: config.portal.linkTtlSeconds,
      sessionTtlSeconds: config.portal.sessionTtlSeconds,
    });
    const sessionCookie = createSessionCookie(config.portal);
    const hasTier = (tier: string) => Object.hasOwn(config.tiers, tier);
    const pageAssets = loadPageAssets(overrides.pageDir);
    if (!pageAssets.built) logger.warn("the Settings page is not built (dist/web): run `npm run build`");

    const usageReport = createUsageReport({ usage: store.usage, clock });
    const preRouter: PreRouter = {};
    const http = await createHttpServer({ preRouter, logger, bodyLimitBytes: config.bodyLimitBytes, trustProxy: trust, version: VERSION });
    const probe = createDependencyProbe({
      registry: health,
      checks: { database: () => store.ping(), ...(redis === undefined ? {} : { redis: redis.ping }) },
    });
    for (const schema of NOTIFICATION_SCHEMAS) http.addSchema(schema);
    const probing = setInterval(() => void probe(), HEALTH_PROBE_INTERVAL_MS);
    probing.unref();
    closers.push(async () => clearInterval(probing));
    registerHealthRoutes(http, { registry: health, probe });
    const isOperatorToken = createOperatorTokenCheck(config.adminToken);
    const operatorAuthenticate = createOperatorAuthenticate({ isConfigured: config.adminToken !== undefined, isOperatorToken });
    const metricsAuth = config.observability.metrics.auth === "operator";
    let metricsUrl: string | undefined;
    if (config.observability.metrics.port === undefined) {
      await registerMetricsRoute(http, { scrape: () => metrics.scrape(), authenticate: metricsAuth ? operatorAuthenticate : undefined });
    } else {
      const metricsServer = await startMetricsServer({
        host: config.observability.metrics.host,
        port: config.observability.metrics.port,
        scrape: () => metrics.scrape(),
        isAllowed: metricsAuth ? (authorization) => isOperatorToken(readBearerToken({ authorization }, { allowXApiKey: false })) : undefined,
        onError: (error) => logger.error({ err: error }, "metrics could not be collected"),
      });
      closers.push(() => metricsServer.close());
      metricsUrl = metricsServer.url;
    }
    await http.register(async (scope) => {
      // onRequest: an unauthenticated request is refused before its body is even parsed.
      scope.addHook(
        "onRequest",
        createAuthenticate(
          authenticator,
          createPortalAuthenticate({ sessions: portal, cookie: sessionCookie, hasTier, publicOrigin: config.portal.publicUrl }),
        ),
      );
      logCompletedRequests(scope);
      registerKeyRoutes(scope, {
        keyService,
        createKey,
        routing: createKeyRouting({ tiers: config.tiers, platformKeys: config.platformKeys, upgrade: config.upgrade }),
      });
      registerPortalSessionRoutes(scope, { sessions: portal, cookie: sessionCookie });
      registerAuditRoutes(scope, { auditLog });
      registerUsageRoutes(scope, { report: usageReport });
      registerLimitsRoutes(scope, { limits: limitsService, webhookSecrets: notifications.webhookSecrets });
      registerNotificationRoutes(scope, { listEvents: notifications.listEvents, webhookSecrets: notifications.webhookSecrets });
    });
    await http.register(async (scope) => {
      scope.addHook("onRequest", operatorAuthenticate);
      logCompletedRequests(scope);
      registerOperatorPortalRoutes(scope, { sessions: portal, hasTier, defaultTier: config.defaultTier, publicOrigin: config.portal.publicUrl });
      registerOperatorRoutes(scope, {
        usageAcrossOwners: createOperatorUsageReport({ operator: store.operator, clock }),
        ownerUsage: usageReport,
        keysWithStatus: createOperatorKeys({ operator: store.operator }),
        keyService,
      });
    });
    registerPortalPageRoutes(http, {
      sessions: portal,
      cookie: sessionCookie,
      assets: pageAssets,
      headers: pageSecurityHeaders(config.portal),
      sessionTtlSeconds: config.portal.sessionTtlSeconds,
    });
    preRouter.dispatch = createGatewayDispatch({ providers, pipeline, bodyLimitBytes: config.gateway.bodyLimitBytes, clock, log: logger });
    notifications.worker.start();
    // Shutdown order (closers run last first): fail readiness and keep serving for the delay,
    // stop accepting, let in-flight calls and streams finish until the drain timeout, cut the
    // streams left, drop the connections, then flush usage, delete the journal, close the pools.
    // After the drain: the last calls' settlements are applied too.
    closers.push(() => settlements.close());
    // The journal goes only once the writer has committed every record; otherwise the next start replays it.
    closers.push(async () => {
      await recorder.close();
      // A call still running now would be recorded after the writer closed: its start line stays.
      await journal.close({ committed: lifecycle.inFlight === 0 });
    });
    closers.push(async () => {
      // Readiness fails first, while the listener keeps accepting: load balancers and Kubernetes
      // take a moment to stop sending here, and calls that arrive meanwhile are still served.
      health.setStopping();
      lifecycle.markClosing();
      if (shutdown.delayMs > 0 && !shutdown.skipDelay) {
        logger.info({ delayMs: shutdown.delayMs }, "not ready; still accepting during the shutdown delay");
        await new Promise((resolve) => setTimeout(resolve, shutdown.delayMs));
      }
      const closed = http.close();
      logger.info({ drainTimeoutMs: shutdown.drainTimeoutMs, inFlight: lifecycle.inFlight }, "no longer accepting connections; draining");
      await lifecycle.drain(shutdown.drainTimeoutMs);
      if (lifecycle.inFlight > 0) {
        // Streams still running are ended with the provider's error event and recorded as cut.
        const cut = lifecycle.cutStreams();
        logger.warn({ drainTimeoutMs: shutdown.drainTimeoutMs, cutStreams: cut, inFlight: lifecycle.inFlight }, "drain timeout passed; cutting the streams still running");
        await lifecycle.drain(CUT_STREAMS_GRACE_MS);
      }
      http.server.closeIdleConnections();
      // A connection still flushing its last bytes is not idle yet; give it a moment, then close.
      const force = setTimeout(() => http.server.closeAllConnections(), 1_000);
      await closed;
      clearTimeout(force);
      // Calls whose connections were just closed end (and are recorded) before the writer closes.
      if (lifecycle.inFlight > 0) await lifecycle.drain(CUT_STREAMS_GRACE_MS);
    });

    // From here on; what the start itself found is logged once, above, or stops the start.
    logHealthChanges(health, logger);
    return {
      http,
      store,
      logger,
      health,
      portal,
      metricsUrl,
      close: (options = {}) => {
        shutdown.skipDelay = options.skipDelay === true;
        return closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
