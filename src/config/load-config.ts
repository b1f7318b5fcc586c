import { isIP } from "node:net";
import path from "node:path";
import { redacted } from "../lib/redacted.js";
import {
  ASYMMETRIC_ALGORITHMS,
  type AsymmetricAlgorithm,
  type Config,
  type DatabaseConfig,
  type Env,
  envSchema,
  type JwtVerifierConfig,
  type ObservabilityConfig,
  type TrustProxy,
} from "./config-schema.js";
import { isTrivialMasterKey, TRIVIAL_KEY_PROBLEM } from "./master-key-rules.js";
import { parseNotificationsConfig } from "./notifications-config.js";
import { parsePortalConfig, parseUpgradeConfig } from "./portal-config.js";
import { isLimitUsd, MAX_LIMIT_USD, usdToNano } from "../lib/money.js";
import { DEFAULT_TIERS, type Tier, TIER_NAME_PATTERN } from "./tiers.js";

/** Raised with every configuration problem at once, so an operator fixes them in one go. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Keyport configuration is invalid:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export const MIN_JWT_SECRET_BYTES = 32;

/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. */
export const MIN_JWT_SECRET_BYTES_BY_ALGORITHM = { HS256: 32, HS384: 48, HS512: 64 } as const;

/**
 * Parses the environment into a frozen `Config`. Pure: it reads nothing but `env` and never
 * touches the disk (development secrets are generated before this by `dev-secrets.ts`).
 */
export function loadConfig(env: Env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`));
  }
  const values = parsed.data;
  const problems: string[] = [];
  const nodeEnv = values.NODE_ENV ?? "development";
  const dataDir = path.resolve(values.KEYPORT_DATA_DIR ?? "data");

  if (values.ENCRYPTION_KEY === undefined) {
    problems.push(
      nodeEnv === "production"
        ? "ENCRYPTION_KEY is required in production: set it to 64 hex characters (run `keyport gen-encryption-key`) and keep it outside the database's backups"
        : "ENCRYPTION_KEY is not set",
    );
  } else if (nodeEnv === "production" && isTrivialMasterKey(values.ENCRYPTION_KEY)) {
    // Outside production a typed key is allowed for trying things out; previous keys never
    // encrypt, and refusing one would block rotating away from it.
    problems.push(TRIVIAL_KEY_PROBLEM);
  }

  const jwtVerifier = parseJwtVerifier(values, problems);
  const tiers = parseTiers(values.KEYPORT_TIERS, problems);
  const defaultTier = values.KEYPORT_DEFAULT_TIER ?? "community";
  // `Object.hasOwn`, not `in`: "constructor" or "toString" must not pass through the prototype chain.
  if (!Object.hasOwn(tiers, defaultTier)) problems.push(`KEYPORT_DEFAULT_TIER "${defaultTier}" is not a configured tier`);

  const database = parseDatabase(values.DATABASE_URL, dataDir, problems);
  const trustProxy = parseTrustProxy(values.KEYPORT_TRUST_PROXY, problems);
  const notifications = parseNotificationsConfig(values, problems);
  const portal = parsePortalConfig(values, nodeEnv, problems);
  const upgrade = parseUpgradeConfig(values, problems);
  const observability = parseObservability(values, problems);

  if (problems.length > 0 || jwtVerifier === undefined || database === undefined) throw new ConfigError(problems);

  const config: Config = {
    nodeEnv,
    host: values.HOST ?? "127.0.0.1",
    port: values.PORT,
    dataDir,
    database,
    encryption: {
      current: redacted((values.ENCRYPTION_KEY ?? "").toLowerCase()),
      previous: (values.ENCRYPTION_KEY_PREVIOUS ?? "")
        .split(",")
        .map((part) => part.trim().toLowerCase())
        .filter((part) => part !== "")
        .map((part) => redacted(part)),
    },
    jwt: {
      verifier: jwtVerifier,
      issuer: values.KEYPORT_JWT_ISSUER,
      audience: values.KEYPORT_JWT_AUDIENCE,
      clockToleranceSeconds: values.KEYPORT_JWT_CLOCK_TOLERANCE_SECONDS,
      maxTtlSeconds: values.KEYPORT_JWT_MAX_TTL_SECONDS,
    },
    adminToken: values.KEYPORT_ADMIN_TOKEN === undefined ? undefined : redacted(values.KEYPORT_ADMIN_TOKEN),
    tiers,
    defaultTier,
    providers: {
      openai: { baseUrl: stripTrailingSlash(values.OPENAI_BASE_URL ?? "https://api.openai.com/v1") },
      anthropic: { baseUrl: stripTrailingSlash(values.ANTHROPIC_BASE_URL ?? "https://api.anthropic.com") },
    },
    platformKeys: {
      openai: values.PLATFORM_OPENAI_API_KEY === undefined ? undefined : redacted(values.PLATFORM_OPENAI_API_KEY),
      anthropic:
        values.PLATFORM_ANTHROPIC_API_KEY === undefined ? undefined : redacted(values.PLATFORM_ANTHROPIC_API_KEY),
    },
    platformOpenAiAccount: { organization: values.PLATFORM_OPENAI_ORGANIZATION, project: values.PLATFORM_OPENAI_PROJECT },
    platformBetas: (values.KEYPORT_PLATFORM_BETA_HEADERS ?? "")
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part !== ""),
    providerTimeoutMs: values.KEYPORT_PROVIDER_TIMEOUT_MS,
    onRejectedKey: values.KEYPORT_ON_REJECTED_KEY ?? "reject",
    keyChecksPerMinute: values.KEYPORT_KEY_CHECKS_PER_MINUTE,
    bodyLimitBytes: values.KEYPORT_BODY_LIMIT_BYTES,
    logLevel: values.LOG_LEVEL ?? "info",
    trustProxy,
    authFailuresPerMinute: values.KEYPORT_AUTH_FAILURES_PER_MINUTE,
    gateway: {
      bodyLimitBytes: values.KEYPORT_GATEWAY_BODY_LIMIT_BYTES,
      headersTimeoutMs: values.KEYPORT_UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: values.KEYPORT_UPSTREAM_BODY_TIMEOUT_MS,
      retries: values.KEYPORT_UPSTREAM_RETRIES,
      retryAfterCapMs: values.KEYPORT_RETRY_AFTER_CAP_MS,
      fallbackOnInvalid: values.KEYPORT_FALLBACK_ON_INVALID ?? "platform",
      rateLimitOnError: values.KEYPORT_RATE_LIMIT_ON_ERROR ?? "open",
      keyCacheTtlMs: values.KEYPORT_KEY_CACHE_TTL_MS,
    },
    shutdown: { delayMs: values.KEYPORT_SHUTDOWN_DELAY_MS, drainTimeoutMs: values.KEYPORT_DRAIN_TIMEOUT_MS },
    redisUrl: values.REDIS_URL === undefined ? undefined : redacted(values.REDIS_URL),
    redisPrefix: values.KEYPORT_REDIS_PREFIX ?? "keyport:",
    pricingFile: values.KEYPORT_PRICING_FILE,
    notifications,
    portal,
    upgrade,
    observability,
  };
  return deepFreeze(config);
}

/**
 * Metrics and the access log. `/metrics` on the main port is for the operator by default (the
 * main port is usually public); on a port of its own it is open by default (that port is meant to
 * be reachable only by the scraper).
 */
function parseObservability(values: ReturnType<typeof envSchema.parse>, problems: string[]): ObservabilityConfig {
  const port = values.KEYPORT_METRICS_PORT === undefined ? undefined : Number(values.KEYPORT_METRICS_PORT);
  if (port !== undefined && port === values.PORT) problems.push("KEYPORT_METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)");
  const auth = values.KEYPORT_METRICS_AUTH ?? (port === undefined ? "operator" : "none");
  if (values.KEYPORT_METRICS_AUTH === "operator" && values.KEYPORT_ADMIN_TOKEN === undefined) {
    problems.push("KEYPORT_METRICS_AUTH=operator needs KEYPORT_ADMIN_TOKEN (the token the scraper sends)");
  }
  return {
    metrics: { port, host: values.KEYPORT_METRICS_HOST ?? values.HOST ?? "127.0.0.1", auth },
    accessLog: values.KEYPORT_ACCESS_LOG !== "false",
  };
}

function parseJwtVerifier(values: ReturnType<typeof envSchema.parse>, problems: string[]): JwtVerifierConfig | undefined {
  const configured = [values.KEYPORT_JWT_SECRET, values.KEYPORT_JWT_PUBLIC_KEY, values.KEYPORT_JWT_JWKS_URL].filter(
    (value) => value !== undefined,
  ).length;
  if (configured !== 1) {
    problems.push(
      configured === 0
        ? "a JWT verifier is required: set KEYPORT_JWT_SECRET (HS256, at least 32 bytes), KEYPORT_JWT_PUBLIC_KEY (PEM) or KEYPORT_JWT_JWKS_URL"
        : "set exactly one of KEYPORT_JWT_SECRET, KEYPORT_JWT_PUBLIC_KEY, KEYPORT_JWT_JWKS_URL",
    );
    return undefined;
  }
  const algorithm = values.KEYPORT_JWT_ALGORITHM;
  if (values.KEYPORT_JWT_SECRET !== undefined) {
    const hmac = algorithm ?? "HS256";
    if (hmac !== "HS256" && hmac !== "HS384" && hmac !== "HS512") {
      problems.push(`KEYPORT_JWT_ALGORITHM "${hmac}" does not fit KEYPORT_JWT_SECRET: use HS256, HS384 or HS512`);
      return undefined;
    }
    const minimumBytes = MIN_JWT_SECRET_BYTES_BY_ALGORITHM[hmac];
    if (Buffer.byteLength(values.KEYPORT_JWT_SECRET, "utf8") < minimumBytes) {
      problems.push(
        `KEYPORT_JWT_SECRET is too short: it must be at least ${minimumBytes} bytes for ${hmac} (generate one with \`openssl rand -base64 48\`)`,
      );
      return undefined;
    }
    return { kind: "secret", algorithm: hmac, secret: redacted(values.KEYPORT_JWT_SECRET) };
  }
  const asymmetric = algorithm ?? "RS256";
  if (!isAsymmetric(asymmetric)) {
    problems.push(
      `KEYPORT_JWT_ALGORITHM "${asymmetric}" does not fit a public key: use one of ${ASYMMETRIC_ALGORITHMS.join(", ")}`,
    );
    return undefined;
  }
  if (values.KEYPORT_JWT_PUBLIC_KEY !== undefined) {
    const pem = values.KEYPORT_JWT_PUBLIC_KEY.replace(/\\n/g, "\n");
    if (!pem.includes("-----BEGIN PUBLIC KEY-----")) {
      problems.push("KEYPORT_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
      return undefined;
    }
    return { kind: "public-key", algorithm: asymmetric, publicKeyPem: pem };
  }
  return { kind: "jwks", algorithm: asymmetric, jwksUrl: values.KEYPORT_JWT_JWKS_URL ?? "" };
}

function isAsymmetric(value: string): value is AsymmetricAlgorithm {
  return (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(value);
}

function parseTiers(raw: string | undefined, problems: string[]): Record<string, Tier> {
  if (raw === undefined) return { ...DEFAULT_TIERS };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    problems.push('KEYPORT_TIERS must be JSON like {"community":{"requestsPerMinute":10,"requestsPerDay":100,"byokAllowed":false}}');
    return {};
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    problems.push("KEYPORT_TIERS must be a JSON object of tier name to limits");
    return {};
  }
  const tiers: Record<string, Tier> = Object.create(null) as Record<string, Tier>;
  for (const [name, value] of Object.entries(parsed)) {
    const tier = value as Partial<Tier> | null;
    if (!TIER_NAME_PATTERN.test(name)) {
      problems.push(`KEYPORT_TIERS: tier name "${name}" must match ${TIER_NAME_PATTERN.source}`);
      continue;
    }
    if (
      tier === null ||
      typeof tier !== "object" ||
      !isCount(tier.requestsPerMinute) ||
      !isCount(tier.requestsPerDay) ||
      typeof tier.byokAllowed !== "boolean"
    ) {
      problems.push(
        `KEYPORT_TIERS: tier "${name}" needs requestsPerMinute and requestsPerDay (integers from 0 to ${MAX_TIER_LIMIT}) and byokAllowed (boolean)`,
      );
      continue;
    }
    const allowance = (value as { platformMonthlyBudgetUsd?: unknown }).platformMonthlyBudgetUsd;
    if (allowance !== undefined && allowance !== null && !isLimitUsd(allowance)) {
      problems.push(`KEYPORT_TIERS: tier "${name}" platformMonthlyBudgetUsd must be a number of USD from 0 to ${MAX_LIMIT_USD} (at most 6 decimals)`);
      continue;
    }
    tiers[name] = {
      requestsPerMinute: tier.requestsPerMinute,
      requestsPerDay: tier.requestsPerDay,
      byokAllowed: tier.byokAllowed,
      ...(typeof allowance === "number" ? { platformMonthlyBudgetNanoUsd: usdToNano(allowance) } : {}),
    };
  }
  return tiers;
}

/** Tier limits are counted exactly (safe integers); above a billion a limit means nothing. */
const MAX_TIER_LIMIT = 1_000_000_000;

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TIER_LIMIT;
}

function parseDatabase(url: string | undefined, dataDir: string, problems: string[]): DatabaseConfig | undefined {
  if (url === undefined) return { kind: "sqlite", path: path.join(dataDir, "keyport.db") };
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return { kind: "postgres", url: redacted(url) };
  // An empty `sqlite:` path would resolve to the working directory itself.
  const sqlitePath = url.startsWith("sqlite:") ? url.slice("sqlite:".length) : "";
  if (sqlitePath !== "") return { kind: "sqlite", path: path.resolve(sqlitePath) };
  problems.push("DATABASE_URL must be postgres://… (PostgreSQL) or sqlite:<path>; leave it unset for ./data/keyport.db");
  return undefined;
}

/**
 * `true`, `false`, or a comma-separated list of proxy addresses and CIDR ranges. No hop counts:
 * a client that reaches Keyport directly could then name itself with enough forwarded hops.
 */
function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || raw === "false") return false;
  if (raw === "true") return true;
  const ranges = raw.split(",").map((part) => part.trim());
  if (ranges.every(isAddressOrRange)) return ranges;
  problems.push(
    "KEYPORT_TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses and CIDR ranges (e.g. 10.0.0.0/8,fd00::/8)",
  );
  return false;
}

function isAddressOrRange(value: string): boolean {
  const [address = "", prefix, ...rest] = value.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function stripTrailingSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
