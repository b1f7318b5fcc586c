import type { KeyStatus, ProviderId } from "./domain.js";

/** Why an upstream attempt was retried: the provider's kind of error, or what the connection did. */
export type RetryReason = "rate_limited" | "unavailable" | "timeout" | "connection";

/**
 * The events domain code reports to metrics, as plain method calls: the gateway, the vault and
 * the usage recorder know this port, never the metrics library. Label values are bounded
 * vocabularies only (a provider, a status): never an owner, a key, a token or a model name.
 * Implementations must be cheap and never throw (they run on the call's path).
 */
export type MetricsPort = {
  /** An upstream attempt failed and is tried again. */
  upstreamRetried(provider: ProviderId, reason: RetryReason): void;
  /** A key's status was changed by what a provider (or the decryption) said. */
  keyStatusChanged(provider: ProviderId, status: KeyStatus): void;
};

/** Counts nothing: the default where no metrics are wired (unit tests, tools). */
export const NO_METRICS: MetricsPort = {
  upstreamRetried: () => undefined,
  keyStatusChanged: () => undefined,
};
