import {
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  importSPKI,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type JWTVerifyResult,
  jwtVerify,
} from "jose";
import type { Config, JwtVerifierConfig } from "../config/config-schema.js";
import { MIN_JWT_SECRET_BYTES_BY_ALGORITHM } from "../config/load-config.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { AppError } from "../lib/errors.js";
import { type Principal, principalFromClaims } from "./principal.js";

/** Why a token was refused. Expected outcomes, returned as values; only bugs throw. */
export type VerifyFailureReason =
  | "malformed"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "missing_claim"
  | "bad_claim"
  | "wrong_issuer"
  | "wrong_audience"
  | "algorithm_not_allowed"
  /** `exp` lies further ahead than KEYPORT_JWT_MAX_TTL_SECONDS (from `iat`, or from now). */
  | "lifetime_too_long"
  /** The configured JWKS could not be fetched or read; the token may well be fine. */
  | "unavailable";

/** `expiresAt` is the token's `exp` in milliseconds since the Unix epoch. */
export type VerifyOutcome =
  | { ok: true; principal: Principal; expiresAt: number }
  | { ok: false; reason: VerifyFailureReason };

/**
 * The principal of a verified token, or the error every end-user route and the gateway answer a
 * refused one with: `unavailable` when the key source could not be read, else `unauthenticated`
 * (the reason stays internal, so a caller cannot probe which check failed).
 */
export function principalFromOutcome(outcome: VerifyOutcome): Principal {
  if (outcome.ok) return outcome.principal;
  if (outcome.reason === "unavailable") throw new AppError("unavailable", "Token verification is temporarily unavailable.");
  throw new AppError("unauthenticated", "Invalid or expired token.", { internal: { reason: outcome.reason } });
}

/** Verifies end-user JWTs against the one configured key source and algorithm. */
export type JwtVerifier = {
  verify(token: string): Promise<VerifyOutcome>;
  /**
   * The outcome of a token verified before and still cached, without a promise; `undefined`
   * when `verify` has to run. The gateway asks this first: nearly every call is a hit.
   */
  verifyCached(token: string): VerifyOutcome | undefined;
  /**
   * Resolves once the configured key is usable; rejects when a PEM public key cannot be imported
   * for the configured algorithm (or is a weak RSA key). Await it at boot so a bad key stops the
   * service instead of failing every request.
   */
  ready(): Promise<void>;
};

export type JwtVerifierOptions = {
  jwt: Config["jwt"];
  tiers: Config["tiers"];
  defaultTier: string;
  /** Replaces `fetch` for JWKS downloads (a dispatcher with timeouts, or a test double). */
  fetchJwks?: FetchImplementation;
  /** Time source for `exp`/`nbf` checks and the verification cache. Default: the system clock. */
  clock?: Clock;
  /** Successful verifications remembered; `0` turns the cache off. Default 10,000. */
  cacheMaxEntries?: number;
};

/** Longer strings are refused before caching or parsing; real JWTs are a few hundred bytes. */
const MAX_TOKEN_LENGTH = 8192;
const DEFAULT_CACHE_MAX_ENTRIES = 10_000;
const MIN_RSA_MODULUS_BITS = 2048;

/** Marks a failure of the JWKS download path, so it maps to `unavailable` rather than a token fault. */
class JwksUnavailableError extends Error {
  constructor(cause: unknown) {
    super("JWKS unavailable", { cause });
    this.name = "JwksUnavailableError";
  }
}

/**
 * Creates the end-user token verifier. The algorithm comes from configuration, never from the
 * token header; `exp` and `sub` are required; `iss`/`aud` are checked when configured; `jku`,
 * `x5u` and embedded `jwk` headers are ignored (jose never follows them), and a JWKS `kid` only
 * selects among the configured keys.
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const { jwt, tiers, defaultTier } = options;
  const clock = options.clock ?? systemClock;
  if (!Object.hasOwn(tiers, defaultTier)) throw new Error(`default tier "${defaultTier}" is not a configured tier`);

  const maxTtlMs = jwt.maxTtlSeconds * 1000;
  const keySource = createKeySource(jwt.verifier, options.fetchJwks);
  const cache = createVerificationCache(options.cacheMaxEntries ?? DEFAULT_CACHE_MAX_ENTRIES);

  async function verifyUncached(token: string, nowMs: number): Promise<VerifyOutcome> {
    const verifyOptions: JWTVerifyOptions = {
      algorithms: [jwt.verifier.algorithm],
      requiredClaims: ["exp", "sub"],
      clockTolerance: jwt.clockToleranceSeconds,
      currentDate: new Date(nowMs),
    };
    if (jwt.issuer !== undefined) verifyOptions.issuer = jwt.issuer;
    if (jwt.audience !== undefined) verifyOptions.audience = jwt.audience;

    let result: JWTVerifyResult;
    try {
      result = await keySource.verify(token, verifyOptions);
    } catch (error) {
      const reason = failureReason(error);
      if (reason === undefined) throw error;
      return { ok: false, reason };
    }

    const { exp, iat } = result.payload;
    // jose enforces this through `requiredClaims`; reaching here without it is a bug, not a bad token.
    if (typeof exp !== "number") throw new Error("verified token has no numeric exp");
    const lifetime = lifetimeProblem(exp, iat, nowMs);
    if (lifetime !== undefined) return { ok: false, reason: lifetime };
    const built = principalFromClaims(result.payload, { tiers, defaultTier });
    if (!built.ok) return built;
    // Frozen because a cache hit hands the same object to every caller.
    return Object.freeze({ ok: true, principal: Object.freeze(built.principal), expiresAt: exp * 1000 });
  }

  /**
   * jose takes any JSON number for `exp` and `iat`: `1e20`, or `1e309`, which parses to Infinity,
   * would make a token valid (and cached) for ever. `exp` must be a whole number of seconds, and
   * no further ahead than the maximum lifetime: from `iat` when the token has one, and from now
   * in every case (so a future `iat` cannot stretch it).
   */
  function lifetimeProblem(exp: number, iat: unknown, nowMs: number): VerifyFailureReason | undefined {
    if (!Number.isSafeInteger(exp)) return "bad_claim";
    if (iat !== undefined && (typeof iat !== "number" || !Number.isFinite(iat))) return "bad_claim";
    if (typeof iat === "number" && exp - iat > jwt.maxTtlSeconds) return "lifetime_too_long";
    if (exp * 1000 - nowMs > (jwt.maxTtlSeconds + jwt.clockToleranceSeconds) * 1000) return "lifetime_too_long";
    return undefined;
  }

  const isWellFormed = (token: string): boolean => typeof token === "string" && token.length > 0 && token.length <= MAX_TOKEN_LENGTH;

  return {
    async verify(token) {
      if (!isWellFormed(token)) return { ok: false, reason: "malformed" };
      const nowMs = clock.now().getTime();
      // Keyed by the token itself: a hit needs the whole token to match, and hashing it first
      // cost more than the rest of the lookup (see docs/decisions.md).
      const cached = cache.get(token, nowMs);
      if (cached !== undefined) return cached;

      const outcome = await verifyUncached(token, nowMs);
      // Held until the token's exp, and never longer than the maximum lifetime from now (the
      // clock tolerance may have let `exp` a few seconds past it).
      if (outcome.ok) cache.set(token, outcome, Math.min(outcome.expiresAt, nowMs + maxTtlMs));
      return outcome;
    },
    verifyCached(token) {
      return isWellFormed(token) ? cache.get(token, clock.now().getTime()) : undefined;
    },
    ready: keySource.ready,
  };
}

type KeySource = {
  verify(token: string, options: JWTVerifyOptions): Promise<JWTVerifyResult>;
  ready(): Promise<void>;
};

function createKeySource(verifier: JwtVerifierConfig, fetchJwks: FetchImplementation | undefined): KeySource {
  switch (verifier.kind) {
    case "secret": {
      const secret = new TextEncoder().encode(verifier.secret.reveal());
      const minimumBytes = MIN_JWT_SECRET_BYTES_BY_ALGORITHM[verifier.algorithm];
      // jose accepts any HMAC key length; RFC 7518 §3.2 requires at least the hash size.
      if (secret.byteLength < minimumBytes) {
        throw new Error(`the JWT secret must be at least ${minimumBytes} bytes for ${verifier.algorithm}`);
      }
      return { verify: (token, options) => jwtVerify(token, secret, options), ready: async () => undefined };
    }
    case "public-key": {
      const imported = importSPKI(verifier.publicKeyPem, verifier.algorithm).then((key) => {
        // jose checks the RSA modulus only while verifying; checking here lets `ready()` fail at boot.
        const modulusLength: unknown = "modulusLength" in key.algorithm ? key.algorithm.modulusLength : undefined;
        if (typeof modulusLength === "number" && modulusLength < MIN_RSA_MODULUS_BITS) {
          throw new Error(`KEYPORT_JWT_PUBLIC_KEY is a ${modulusLength}-bit RSA key; use at least ${MIN_RSA_MODULUS_BITS} bits`);
        }
        return key;
      });
      // Observed here so a bad key is not an unhandled rejection before `ready()` or `verify()` awaits it.
      imported.catch(() => undefined);
      return {
        verify: async (token, options) => jwtVerify(token, await imported, options),
        ready: async () => {
          try {
            await imported;
          } catch (error) {
            throw new Error(`KEYPORT_JWT_PUBLIC_KEY cannot be used as a ${verifier.algorithm} public key`, { cause: error });
          }
        },
      };
    }
    case "jwks": {
      const remote = createRemoteJWKSet(
        new URL(verifier.jwksUrl),
        fetchJwks === undefined ? {} : { [customFetch]: fetchJwks },
      );
      const getKey: JWTVerifyGetKey = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (error) {
          // "No such kid" is a fault of the token; anything else (network, non-200, bad JSON,
          // invalid key set) is a fault of the key source.
          if (hasJoseCode(error, "ERR_JWKS_NO_MATCHING_KEY") || hasJoseCode(error, "ERR_JWKS_MULTIPLE_MATCHING_KEYS")) {
            throw error;
          }
          throw new JwksUnavailableError(error);
        }
      };
      return { verify: (token, options) => jwtVerify(token, getKey, options), ready: async () => undefined };
    }
  }
}

function hasJoseCode(error: unknown, code: string): boolean {
  return error instanceof errors.JOSEError && error.code === code;
}

/** Maps jose errors by their stable `code` (never by message text); `undefined` means a bug. */
function failureReason(error: unknown): VerifyFailureReason | undefined {
  if (error instanceof JwksUnavailableError) return "unavailable";
  if (!(error instanceof errors.JOSEError)) return undefined;
  switch (error.code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    // No configured key matches the token's `kid`: it is not signed by a key we trust.
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "bad_signature";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    // With algorithms pinned this comes from an unsupported `alg` or an unknown `crit` extension.
    case "ERR_JOSE_NOT_SUPPORTED":
      return "algorithm_not_allowed";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return error instanceof errors.JWTClaimValidationFailed ? claimFailureReason(error) : "bad_claim";
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return "unavailable";
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
    default:
      // Any other jose error is about the token's structure, never about our state.
      return "malformed";
  }
}

function claimFailureReason(error: errors.JWTClaimValidationFailed): VerifyFailureReason {
  if (error.reason === "missing") return "missing_claim";
  if (error.claim === "iss") return "wrong_issuer";
  if (error.claim === "aud") return "wrong_audience";
  if (error.claim === "nbf" && error.reason === "check_failed") return "not_yet_valid";
  return "bad_claim";
}

type VerifiedOutcome = Extract<VerifyOutcome, { ok: true }>;

type CacheEntry = { outcome: VerifiedOutcome; untilMs: number };

/** How often expired entries are swept out, so no token stays in memory long after it expired. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Remembers successful verifications, because the gateway verifies the token on every proxied
 * call and an RSA/ECDSA verification costs far more than a map lookup. Keyed by the token itself
 * (a hit must match it whole), bounded (oldest entry evicted first; a hit moves the entry to the
 * back, so eviction is least-recently-used), and an entry is honoured only while `now < exp`,
 * and never longer than the maximum token lifetime after it was verified — after that the token
 * goes through full verification again, which applies the clock tolerance and refuses an expired
 * one; expired entries are swept out once a minute. Only successes are cached, so garbage tokens cannot
 * evict real entries and an `unavailable` never outlives a JWKS outage. The cost: a key removed
 * from the JWKS stops covering tokens already seen only at their `exp` — the same horizon a JWT
 * has anyway, since it cannot be revoked before it expires.
 */
function createVerificationCache(maxEntries: number) {
  const entries = new Map<string, CacheEntry>();
  let lastSweepMs = 0;
  const sweepExpired = (nowMs: number): void => {
    if (nowMs - lastSweepMs < SWEEP_INTERVAL_MS) return;
    lastSweepMs = nowMs;
    for (const [key, entry] of entries) if (nowMs >= entry.untilMs) entries.delete(key);
  };
  return {
    get(key: string, nowMs: number): VerifiedOutcome | undefined {
      sweepExpired(nowMs);
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      entries.delete(key);
      if (nowMs >= entry.untilMs) return undefined;
      entries.set(key, entry);
      return entry.outcome;
    },
    /** Remembers `outcome` until `untilMs` (at most the token's exp). */
    set(key: string, outcome: VerifiedOutcome, untilMs: number): void {
      if (maxEntries <= 0) return;
      entries.delete(key);
      while (entries.size >= maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
      entries.set(key, { outcome, untilMs: Math.min(untilMs, outcome.expiresAt) });
    },
  };
}
