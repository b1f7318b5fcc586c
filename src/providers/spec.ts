import type { Dispatcher } from "undici";
import type { KeyCheckResult, ProviderId } from "../lib/domain.js";
import type { Redacted } from "../lib/redacted.js";

/** Why a submitted key was refused before any network call. */
export type KeyFormatProblemCode =
  | "empty"
  | "whitespace"
  | "characters"
  | "length"
  | "wrong_prefix"
  | "other_provider"
  | "admin_key";

export type KeyFormatProblem = { code: KeyFormatProblemCode; message: string };

/** Outcome of a live check. `message` is already scrubbed of anything key-like. */
export type KeyCheck = { result: KeyCheckResult; message: string };

export type ProviderAdapterOptions = {
  /** From configuration only, never from a request. No trailing slash. */
  baseUrl: string;
  /** Per-call timeout for a key check, in milliseconds. */
  timeoutMs: number;
  /** Pooled HTTP client shared by the process. */
  dispatcher: Dispatcher;
};

/**
 * One adapter per provider. Adapters receive a decrypted key and a dispatcher; they never look
 * anything up. Everything provider-specific (key shapes, validation calls, error bodies) lives
 * behind this port.
 */
export type ProviderAdapter = {
  readonly id: ProviderId;
  /** Pure format check of an already-normalised key (see `normalizeKey`). */
  checkKeyFormat(apiKey: string): KeyFormatProblem | undefined;
  /**
   * Asks the provider whether the key works. Never throws for provider answers or network
   * failures: those become `invalid`, `no_credits`, `rate_limited` or `unreachable`.
   */
  checkKey(apiKey: Redacted<string>, options?: { signal?: AbortSignal }): Promise<KeyCheck>;
};

export type ProviderRegistry = Readonly<Record<ProviderId, ProviderAdapter>>;
