import { z } from "zod";
import type { Redacted } from "../lib/redacted.js";
import { isMasterKeyHex, masterKeyFormatProblem } from "./master-key-rules.js";
import type { NotificationsConfig } from "./notifications-config.js";
import type { PortalConfig, UpgradeConfig } from "./portal-config.js";
import type { Tier } from "./tiers.js";

export type JwtVerifierConfig =
  | { kind: "secret"; algorithm: "HS256" | "HS384" | "HS512"; secret: Redacted<string> }
  | { kind: "public-key"; algorithm: AsymmetricAlgorithm; publicKeyPem: string }
  | { kind: "jwks"; algorithm: AsymmetricAlgorithm; jwksUrl: string };

export const ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export type DatabaseConfig = { kind: "sqlite"; path: string } | { kind: "postgres"; url: Redacted<string> };

export type ProviderEndpoint = { baseUrl: string };

/**
 * Which proxies in front of Keyport may say who the client is (`X-Forwarded-For`): `false` none
 * (the connection's address is the client), `true` every hop (the leftmost address: only safe
 * behind a proxy that replaces the header), or a list of proxy addresses and CIDR ranges.
 */
export type TrustProxy = boolean | readonly string[];

/** The whole runtime configuration, parsed once from the environment and frozen. */
export type Config = {
  nodeEnv: "production" | "development" | "test";
  host: string;
  port: number;
  /** Directory for the SQLite file and, outside production, generated development secrets. */
  dataDir: string;
  database: DatabaseConfig;
  encryption: {
    /** Current master key, 32 bytes as 64 hex characters. */
    current: Redacted<string>;
    /** Older master keys that may still decrypt (during a rotation). */
    previous: readonly Redacted<string>[];
  };
  jwt: {
    verifier: JwtVerifierConfig;
    issuer: string | undefined;
    audience: string | undefined;
    clockToleranceSeconds: number;
    /**
     * Longest accepted token lifetime, in seconds: `exp - iat` when the token has `iat`, and
     * `exp - now` in any case. Default 86,400 (24 h).
     */
    maxTtlSeconds: number;
  };
  /** Operator token for operator routes; operator routes are off without it. */
  adminToken: Redacted<string> | undefined;
  tiers: Readonly<Record<string, Tier>>;
  defaultTier: string;
  providers: { openai: ProviderEndpoint; anthropic: ProviderEndpoint };
  platformKeys: { openai: Redacted<string> | undefined; anthropic: Redacted<string> | undefined };
  /**
   * The operator's OpenAI organization and project for platform calls (`openai-organization`,
   * `openai-project`); unset sends none. A caller's own values go only with the caller's own key.
   */
  platformOpenAiAccount: { organization: string | undefined; project: string | undefined };
  /**
   * Beta features callers may switch on for platform calls: values of `openai-beta` /
   * `anthropic-beta` (e.g. `assistants=v2`), or a header's name to let all of its values through.
   * Empty: no beta header reaches the provider with the platform key.
   */
  platformBetas: readonly string[];
  /** Timeout for one key-validation call to a provider, in milliseconds. */
  providerTimeoutMs: number;
  /** What to do with a key the provider rejects on create: refuse it (422) or store it as `invalid`. */
  onRejectedKey: "reject" | "store";
  /** Key creates + tests allowed per owner per minute (they would otherwise be a free stolen-key checker). */
  keyChecksPerMinute: number;
  /** Largest accepted management API request body, in bytes. */
  bodyLimitBytes: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  trustProxy: TrustProxy;
  /** Failed authentications allowed per client address per minute before it gets 429s. */
  authFailuresPerMinute: number;
  gateway: GatewayConfig;
  shutdown: ShutdownConfig;
  /** Shared rate limits and cache invalidation across instances; in-memory when unset. */
  redisUrl: Redacted<string> | undefined;
  /**
   * Put in front of every Redis key and pub/sub channel Keyport uses, so deployments sharing one
   * Redis server stay apart. Default `keyport:`.
   */
  redisPrefix: string;
  /** Price table override (JSON); the shipped table when unset. */
  pricingFile: string | undefined;
  /** Webhooks and email for notification events. */
  notifications: NotificationsConfig;
  /** Portal links, sessions and the Settings page. */
  portal: PortalConfig;
  /** What users on a plan without BYOK are told instead of "add your own key". */
  upgrade: UpgradeConfig;
  observability: ObservabilityConfig;
};

export type ObservabilityConfig = {
  metrics: {
    /** A listener of its own for `GET /metrics`; `undefined`: served on the main port. */
    port: number | undefined;
    /** Where that listener binds (default `HOST`). */
    host: string;
    /** `operator`: `GET /metrics` needs `Authorization: Bearer <KEYPORT_ADMIN_TOKEN>`; `none`: open. */
    auth: "none" | "operator";
  };
  /** One `info` line per gateway call (`KEYPORT_ACCESS_LOG`, default true). */
  accessLog: boolean;
};

export type GatewayConfig = {
  /** Largest accepted gateway request body, in bytes. */
  bodyLimitBytes: number;
  /** Until the provider's response headers arrive, in milliseconds. */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks from the provider, in milliseconds. */
  bodyTimeoutMs: number;
  /** Retries of a failed upstream attempt (429 rate limit, 5xx, connection errors). */
  retries: number;
  /** A `retry-after` longer than this is not waited for. */
  retryAfterCapMs: number;
  /** A BYOK key the provider rejects mid-call: retry once on the platform key, or return the error. */
  fallbackOnInvalid: "platform" | "error";
  /** When the rate limiter's backend is down: let platform calls through (`open`) or refuse them. */
  rateLimitOnError: "open" | "closed";
  /** How long a cached key record lives without any change notice, in milliseconds. */
  keyCacheTtlMs: number;
};

/**
 * A SIGTERM first fails readiness and keeps serving for `delayMs` (load balancers and Kubernetes
 * endpoints take a moment to stop sending), then stops accepting and gives calls in flight
 * `drainTimeoutMs` to finish; streams still running then are cut with the provider's error event.
 */
export type ShutdownConfig = {
  delayMs: number;
  drainTimeoutMs: number;
};

/** What a header value may hold without quoting: visible ASCII, no spaces or commas. */
const HEADER_TOKEN = /^[\x21-\x2b\x2d-\x7e]+$/;

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

/** The accepted range of an integer setting, and its value when unset. */
export type IntegerSettingRange = { fallback: number; min: number; max: number };

/**
 * Every integer setting's range, keyed by its schema, so tests can find each one in `envSchema`
 * and check that every value it accepts also starts the service.
 */
export const integerSettingRanges = z.registry<IntegerSettingRange>();

/** Decimal digits only: `Number()` would also take `0x1f`, `1e3`, `Infinity` and blanks inside. */
const DECIMAL_INTEGER = /^[0-9]{1,16}$/;

/**
 * An integer setting. This is the one place that decides which values are usable: every value in
 * `[min, max]` must work wherever the setting is used, so `min` and `max` are chosen from what the
 * consumers accept (a zero TTL, a zero limit or a timeout past setTimeout's range never passes).
 */
const integerFromString = (fallback: number, min: number, max: number) => {
  const schema = z
    .string()
    .optional()
    .transform((value, context) => {
      if (value === undefined || value.trim() === "") return fallback;
      const trimmed = value.trim();
      const parsed = Number(trimmed);
      if (!DECIMAL_INTEGER.test(trimmed) || parsed < min || parsed > max) {
        context.addIssue({ code: "custom", message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return parsed;
    });
  schema.register(integerSettingRanges, { fallback, min, max });
  return schema;
};

/**
 * The environment variables Keyport reads. Everything is optional at this level; the cross-field
 * rules (production needs a key, exactly one JWT verifier, …) live in `load-config.ts`.
 */
export const envSchema = z.object({
  NODE_ENV: z.enum(["production", "development", "test"]).optional(),
  HOST: optionalString,
  PORT: integerFromString(8787, 0, 65535),
  KEYPORT_DATA_DIR: optionalString,
  DATABASE_URL: optionalString,
  ENCRYPTION_KEY: optionalString.superRefine((value, context) => {
    const problem = value === undefined ? undefined : masterKeyFormatProblem(value);
    if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
  }),
  ENCRYPTION_KEY_PREVIOUS: optionalString.refine(
    (value) => value === undefined || value.split(",").every((part) => isMasterKeyHex(part.trim())),
    { message: "must be a comma-separated list of 64-hex-character keys" },
  ),
  KEYPORT_JWT_SECRET: optionalString,
  KEYPORT_JWT_ALGORITHM: optionalString,
  KEYPORT_JWT_PUBLIC_KEY: optionalString,
  KEYPORT_JWT_JWKS_URL: optionalString.refine((value) => value === undefined || URL.canParse(value), {
    message: "must be a URL",
  }),
  KEYPORT_JWT_ISSUER: optionalString,
  KEYPORT_JWT_AUDIENCE: optionalString,
  KEYPORT_JWT_CLOCK_TOLERANCE_SECONDS: integerFromString(5, 0, 300),
  KEYPORT_JWT_MAX_TTL_SECONDS: integerFromString(86_400, 60, 31_536_000),
  KEYPORT_ADMIN_TOKEN: optionalString.refine((value) => value === undefined || value.length >= 32, {
    message: "must be at least 32 characters",
  }),
  KEYPORT_TIERS: optionalString,
  KEYPORT_DEFAULT_TIER: optionalString,
  OPENAI_BASE_URL: optionalString.refine((value) => value === undefined || URL.canParse(value), {
    message: "must be a URL",
  }),
  ANTHROPIC_BASE_URL: optionalString.refine((value) => value === undefined || URL.canParse(value), {
    message: "must be a URL",
  }),
  PLATFORM_OPENAI_API_KEY: optionalString,
  PLATFORM_ANTHROPIC_API_KEY: optionalString,
  PLATFORM_OPENAI_ORGANIZATION: optionalString.refine((value) => value === undefined || HEADER_TOKEN.test(value), {
    message: "must be an OpenAI organization id (org-…): visible characters only",
  }),
  PLATFORM_OPENAI_PROJECT: optionalString.refine((value) => value === undefined || HEADER_TOKEN.test(value), {
    message: "must be an OpenAI project id (proj_…): visible characters only",
  }),
  KEYPORT_PLATFORM_BETA_HEADERS: optionalString.refine(
    (value) => value === undefined || value.split(",").every((part) => part.trim() === "" || HEADER_TOKEN.test(part.trim())),
    { message: "must be a comma-separated list of beta names (e.g. assistants=v2,prompt-caching-2024-07-31) or beta header names" },
  ),
  KEYPORT_PROVIDER_TIMEOUT_MS: integerFromString(10_000, 100, 120_000),
  KEYPORT_ON_REJECTED_KEY: z.enum(["reject", "store"]).optional(),
  KEYPORT_KEY_CHECKS_PER_MINUTE: integerFromString(10, 1, 10_000),
  KEYPORT_BODY_LIMIT_BYTES: integerFromString(65_536, 1024, 10 * 1024 * 1024),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
  KEYPORT_TRUST_PROXY: optionalString,
  KEYPORT_AUTH_FAILURES_PER_MINUTE: integerFromString(20, 1, 100_000),
  REDIS_URL: optionalString.refine((value) => value === undefined || /^rediss?:\/\//.test(value), {
    message: "must be a redis:// or rediss:// URL",
  }),
  // No braces: the rate limiter's keys carry a `{owner}` hash tag, and Redis Cluster hashes only
  // the first braced part of a key.
  KEYPORT_REDIS_PREFIX: optionalString.refine((value) => value === undefined || /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/.test(value), {
    message: "must be 1 to 64 characters: letters, digits and : . _ - (starting with a letter or digit)",
  }),
  KEYPORT_PRICING_FILE: optionalString,
  KEYPORT_GATEWAY_BODY_LIMIT_BYTES: integerFromString(20 * 1024 * 1024, 1024, 100 * 1024 * 1024),
  KEYPORT_UPSTREAM_HEADERS_TIMEOUT_MS: integerFromString(120_000, 100, 3_600_000),
  KEYPORT_UPSTREAM_BODY_TIMEOUT_MS: integerFromString(300_000, 100, 3_600_000),
  KEYPORT_UPSTREAM_RETRIES: integerFromString(2, 0, 10),
  KEYPORT_RETRY_AFTER_CAP_MS: integerFromString(10_000, 0, 300_000),
  KEYPORT_FALLBACK_ON_INVALID: z.enum(["platform", "error"]).optional(),
  KEYPORT_RATE_LIMIT_ON_ERROR: z.enum(["open", "closed"]).optional(),
  KEYPORT_KEY_CACHE_TTL_MS: integerFromString(60_000, 1, 3_600_000),
  KEYPORT_SHUTDOWN_DELAY_MS: integerFromString(0, 0, 120_000),
  KEYPORT_DRAIN_TIMEOUT_MS: integerFromString(25_000, 0, 600_000),
  // Notifications (parsed further in notifications-config.ts).
  KEYPORT_WEBHOOK_URL: optionalString,
  KEYPORT_WEBHOOK_SECRET: optionalString,
  KEYPORT_WEBHOOK_RETRY_SCHEDULE: optionalString,
  KEYPORT_WEBHOOK_ALLOW_PRIVATE: z.enum(["true", "false"]).optional(),
  KEYPORT_WEBHOOK_TIMEOUT_MS: integerFromString(10_000, 100, 120_000),
  KEYPORT_NOTIFICATION_POLL_MS: integerFromString(1_000, 10, 60_000),
  SMTP_URL: optionalString,
  SMTP_FROM: optionalString,
  KEYPORT_PUBLIC_URL: optionalString,
  KEYPORT_FRAME_ANCESTORS: optionalString,
  KEYPORT_PORTAL_LINK_TTL_SECONDS: integerFromString(300, 30, 3600),
  KEYPORT_PORTAL_SESSION_TTL_SECONDS: integerFromString(3600, 300, 86_400),
  KEYPORT_UPGRADE_HINT: optionalString,
  KEYPORT_UPGRADE_URL: optionalString,
  // Unset: /metrics is served on the main port. Not an `integerFromString`: it has no default
  // value, and a fixed port cannot be part of the start-at-every-extreme test.
  KEYPORT_METRICS_PORT: optionalString.refine((value) => value === undefined || (/^[0-9]{1,5}$/.test(value) && Number(value) >= 1 && Number(value) <= 65535), {
    message: "must be a port number from 1 to 65535 (unset: /metrics is served on PORT)",
  }),
  KEYPORT_METRICS_HOST: optionalString,
  KEYPORT_METRICS_AUTH: z.enum(["none", "operator"]).optional(),
  KEYPORT_ACCESS_LOG: z.enum(["true", "false"]).optional(),
});

export type Env = z.input<typeof envSchema>;
