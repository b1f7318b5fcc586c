import { randomBytes } from "node:crypto";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type Env, envSchema, integerSettingRanges } from "./config-schema.js";
import { ConfigError, loadConfig } from "./load-config.js";
import { DEFAULT_TIERS } from "./tiers.js";

const ENCRYPTION_KEY = "ab".repeat(32);
const JWT_SECRET = "s".repeat(32);
const PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----";

/** The smallest environment that loads. */
function baseEnv(overrides: Env = {}): Env {
  return { ENCRYPTION_KEY, KEYPORT_JWT_SECRET: JWT_SECRET, ...overrides };
}

/** Runs `loadConfig` expecting a `ConfigError`, and returns its problems. */
function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    if (error instanceof ConfigError) return error.problems;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(Object.keys(env))}`);
}

describe("loadConfig defaults", () => {
  it("fills every default from a minimal environment", () => {
    const config = loadConfig(baseEnv());
    expect(config.nodeEnv).toBe("development");
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(8787);
    expect(config.dataDir).toBe(path.resolve("data"));
    expect(config.database).toEqual({ kind: "sqlite", path: path.join(path.resolve("data"), "keyport.db") });
    expect(config.encryption.current.reveal()).toBe(ENCRYPTION_KEY);
    expect(config.encryption.previous).toEqual([]);
    expect(config.jwt.verifier.kind).toBe("secret");
    expect(config.jwt.verifier.algorithm).toBe("HS256");
    expect(config.jwt.issuer).toBeUndefined();
    expect(config.jwt.audience).toBeUndefined();
    expect(config.jwt.clockToleranceSeconds).toBe(5);
    expect(config.jwt.maxTtlSeconds).toBe(86_400);
    expect(config.adminToken).toBeUndefined();
    expect(config.tiers).toEqual(DEFAULT_TIERS);
    expect(config.defaultTier).toBe("community");
    expect(config.providers.openai.baseUrl).toBe("https://api.openai.com/v1");
    expect(config.providers.anthropic.baseUrl).toBe("https://api.anthropic.com");
    expect(config.platformKeys).toEqual({ openai: undefined, anthropic: undefined });
    expect(config.providerTimeoutMs).toBe(10_000);
    expect(config.onRejectedKey).toBe("reject");
    expect(config.keyChecksPerMinute).toBe(10);
    expect(config.bodyLimitBytes).toBe(65_536);
    expect(config.logLevel).toBe("info");
    expect(config.trustProxy).toBe(false);
    expect(config.authFailuresPerMinute).toBe(20);
    expect(config.redisPrefix).toBe("keyport:");
  });

  it("reads KEYPORT_REDIS_PREFIX", () => {
    expect(loadConfig(baseEnv({ KEYPORT_REDIS_PREFIX: " staging:eu-1: " })).redisPrefix).toBe("staging:eu-1:");
  });

  it("returns a deeply frozen config", () => {
    const config = loadConfig(baseEnv());
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.jwt)).toBe(true);
    expect(Object.isFrozen(config.tiers)).toBe(true);
    expect(Object.isFrozen(config.tiers["community"])).toBe(true);
  });

  it("reads explicit values, trims them and treats blank strings as unset", () => {
    const config = loadConfig(
      baseEnv({
        NODE_ENV: "test",
        HOST: " 0.0.0.0 ",
        PORT: "9000",
        KEYPORT_DATA_DIR: "/tmp/keyport-data",
        ENCRYPTION_KEY: ENCRYPTION_KEY.toUpperCase(),
        ENCRYPTION_KEY_PREVIOUS: ` ${"cd".repeat(32)} , ${"EF".repeat(32)}`,
        KEYPORT_JWT_ISSUER: "https://issuer.example",
        KEYPORT_JWT_AUDIENCE: "keyport",
        KEYPORT_JWT_CLOCK_TOLERANCE_SECONDS: "0",
        KEYPORT_JWT_MAX_TTL_SECONDS: "3600",
        KEYPORT_ADMIN_TOKEN: "a".repeat(32),
        OPENAI_BASE_URL: "https://proxy.example/v1///",
        PLATFORM_OPENAI_API_KEY: "sk-platform",
        KEYPORT_PROVIDER_TIMEOUT_MS: "",
        KEYPORT_ON_REJECTED_KEY: "store",
        LOG_LEVEL: "debug",
        KEYPORT_TRUST_PROXY: "true",
      }),
    );
    expect(config.nodeEnv).toBe("test");
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(9000);
    expect(config.database).toEqual({ kind: "sqlite", path: "/tmp/keyport-data/keyport.db" });
    expect(config.encryption.current.reveal()).toBe(ENCRYPTION_KEY);
    expect(config.encryption.previous.map((key) => key.reveal())).toEqual(["cd".repeat(32), "ef".repeat(32)]);
    expect(config.jwt.issuer).toBe("https://issuer.example");
    expect(config.jwt.audience).toBe("keyport");
    expect(config.jwt.clockToleranceSeconds).toBe(0);
    expect(config.jwt.maxTtlSeconds).toBe(3600);
    expect(config.adminToken?.reveal()).toBe("a".repeat(32));
    expect(config.providers.openai.baseUrl).toBe("https://proxy.example/v1");
    expect(config.platformKeys.openai?.reveal()).toBe("sk-platform");
    expect(config.providerTimeoutMs).toBe(10_000);
    expect(config.onRejectedKey).toBe("store");
    expect(config.logLevel).toBe("debug");
    expect(config.trustProxy).toBe(true);
  });

  it("keeps secrets out of serialized config", () => {
    const config = loadConfig(baseEnv({ KEYPORT_ADMIN_TOKEN: "t".repeat(40), PLATFORM_OPENAI_API_KEY: "sk-canary-123" }));
    const text = JSON.stringify(config);
    for (const secret of [ENCRYPTION_KEY, JWT_SECRET, "t".repeat(40), "sk-canary-123"]) expect(text).not.toContain(secret);
  });
});

describe("loadConfig validation messages", () => {
  it.each([
    ["PORT", { PORT: "65536" }, "PORT must be an integer from 0 to 65535"],
    ["PORT", { PORT: "80.5" }, "PORT must be an integer from 0 to 65535"],
    ["PORT", { PORT: "http" }, "PORT must be an integer from 0 to 65535"],
    ["clock tolerance", { KEYPORT_JWT_CLOCK_TOLERANCE_SECONDS: "301" }, "KEYPORT_JWT_CLOCK_TOLERANCE_SECONDS must be an integer from 0 to 300"],
    ["token lifetime", { KEYPORT_JWT_MAX_TTL_SECONDS: "0" }, "KEYPORT_JWT_MAX_TTL_SECONDS must be an integer from 60 to 31536000"],
    ["token lifetime", { KEYPORT_JWT_MAX_TTL_SECONDS: "1e309" }, "KEYPORT_JWT_MAX_TTL_SECONDS must be an integer from 60 to 31536000"],
    ["provider timeout", { KEYPORT_PROVIDER_TIMEOUT_MS: "99" }, "KEYPORT_PROVIDER_TIMEOUT_MS must be an integer from 100 to 120000"],
    ["key checks", { KEYPORT_KEY_CHECKS_PER_MINUTE: "0" }, "KEYPORT_KEY_CHECKS_PER_MINUTE must be an integer from 1 to 10000"],
    ["body limit", { KEYPORT_BODY_LIMIT_BYTES: "1023" }, "KEYPORT_BODY_LIMIT_BYTES must be an integer from 1024 to 10485760"],
    ["encryption key", { ENCRYPTION_KEY: "ab".repeat(31) }, "ENCRYPTION_KEY must be exactly 64 hex characters (32 bytes); generate one with `keyport gen-encryption-key`"],
    ["encryption key", { ENCRYPTION_KEY: "zz".repeat(32) }, "ENCRYPTION_KEY must be exactly 64 hex characters"],
    ["previous keys", { ENCRYPTION_KEY_PREVIOUS: `${"cd".repeat(32)},short` }, "ENCRYPTION_KEY_PREVIOUS must be a comma-separated list of 64-hex-character keys"],
    ["JWKS URL", { KEYPORT_JWT_SECRET: undefined, KEYPORT_JWT_JWKS_URL: "not a url" }, "KEYPORT_JWT_JWKS_URL must be a URL"],
    ["admin token", { KEYPORT_ADMIN_TOKEN: "a".repeat(31) }, "KEYPORT_ADMIN_TOKEN must be at least 32 characters"],
    ["OpenAI URL", { OPENAI_BASE_URL: "api.openai.com" }, "OPENAI_BASE_URL must be a URL"],
    ["Anthropic URL", { ANTHROPIC_BASE_URL: "::" }, "ANTHROPIC_BASE_URL must be a URL"],
    // A brace would take over the rate limiter's `{owner}` hash tag on Redis Cluster.
    ["Redis prefix", { KEYPORT_REDIS_PREFIX: "{tenant}:" }, "KEYPORT_REDIS_PREFIX must be 1 to 64 characters"],
    ["Redis prefix", { KEYPORT_REDIS_PREFIX: "with space" }, "KEYPORT_REDIS_PREFIX must be 1 to 64 characters"],
    ["Redis prefix", { KEYPORT_REDIS_PREFIX: "p".repeat(65) }, "KEYPORT_REDIS_PREFIX must be 1 to 64 characters"],
  ] satisfies [string, Env, string][])("rejects a bad %s with a message naming the variable", (_name, overrides, message) => {
    const problems = problemsOf(baseEnv(overrides));
    expect(problems.some((problem) => problem.startsWith(message)), problems.join("\n")).toBe(true);
  });

  it.each([
    ["NODE_ENV", { NODE_ENV: "staging" }],
    ["KEYPORT_ON_REJECTED_KEY", { KEYPORT_ON_REJECTED_KEY: "ignore" }],
    ["LOG_LEVEL", { LOG_LEVEL: "verbose" }],
    ["KEYPORT_TRUST_PROXY", { KEYPORT_TRUST_PROXY: "yes" }],
  ] as [string, Record<string, string>][])("rejects an unknown %s value", (name, overrides) => {
    const problems = problemsOf(baseEnv(overrides as Env));
    expect(problems.some((problem) => problem.startsWith(`${name} `)), problems.join("\n")).toBe(true);
  });

  it("never quotes a secret value in its messages", () => {
    const secret = "ZZ-secret-value-that-must-not-leak-0123456789";
    const error = (() => {
      try {
        loadConfig({ ENCRYPTION_KEY: secret, KEYPORT_JWT_SECRET: secret, ENCRYPTION_KEY_PREVIOUS: secret });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).not.toContain(secret);
    expect(String(error)).not.toContain("ZZ-secret");
  });

  it("reports the cross-field problems together", () => {
    const problems = problemsOf({ KEYPORT_DEFAULT_TIER: "gold", DATABASE_URL: "mysql://db" });
    expect(problems).toEqual([
      "ENCRYPTION_KEY is not set",
      expect.stringContaining("a JWT verifier is required"),
      'KEYPORT_DEFAULT_TIER "gold" is not a configured tier',
      expect.stringContaining("DATABASE_URL must be postgres://"),
    ]);
  });

  it("tells the operator what to do when production has no ENCRYPTION_KEY", () => {
    const problems = problemsOf({ NODE_ENV: "production", KEYPORT_JWT_SECRET: JWT_SECRET });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("ENCRYPTION_KEY is required in production");
    expect(problems[0]).toContain("keyport gen-encryption-key");
    expect(problems[0]).toContain("64 hex characters");
  });
});

describe("loadConfig ENCRYPTION_KEY strength and encoding", () => {
  const production = (overrides: Env): Env => baseEnv({ NODE_ENV: "production", ...overrides });
  const randomKey = (): string => randomBytes(32).toString("hex");

  it.each([
    ["all zeros", "00".repeat(32)],
    ["one repeated byte", "ab".repeat(32)],
    ["a repeated 8-byte pattern", "0123456789abcdef".repeat(4)],
    ["15 distinct bytes", Buffer.from(Array.from({ length: 32 }, (_, index) => index % 15)).toString("hex")],
  ])("production refuses %s, without quoting the key", (_label, key) => {
    const problems = problemsOf(production({ ENCRYPTION_KEY: key }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ENCRYPTION_KEY is not a random key .*keyport gen-encryption-key.*ENCRYPTION_KEY_PREVIOUS.*rotate-encryption-key/);
    expect(problems.join("\n")).not.toContain(key);
  });

  it("production accepts a random key, 16 distinct bytes, and a trivial key as a previous one (to rotate away from it)", () => {
    expect(loadConfig(production({ ENCRYPTION_KEY: randomKey() })).nodeEnv).toBe("production");
    const sixteen = Buffer.from(Array.from({ length: 32 }, (_, index) => index % 16)).toString("hex");
    expect(loadConfig(production({ ENCRYPTION_KEY: sixteen })).nodeEnv).toBe("production");
    const config = loadConfig(production({ ENCRYPTION_KEY: randomKey(), ENCRYPTION_KEY_PREVIOUS: "00".repeat(32) }));
    expect(config.encryption.previous.map((key) => key.reveal())).toEqual(["00".repeat(32)]);
  });

  it("outside production a typed key is allowed, for trying Keyport out", () => {
    expect(loadConfig(baseEnv({ ENCRYPTION_KEY: "00".repeat(32) })).encryption.current.reveal()).toBe("00".repeat(32));
  });

  it.each([
    ["base64 (44 characters)", randomBytes(32).toString("base64")],
    ["base64url without padding (43 characters)", randomBytes(32).toString("base64url")],
  ])("says how to convert a key given in %s to hex, without quoting it", (_label, key) => {
    const problems = problemsOf(baseEnv({ ENCRYPTION_KEY: key }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ENCRYPTION_KEY must be exactly 64 hex characters \(32 bytes\).*base64/);
    expect(problems[0]).toContain(`node -e 'console.log(Buffer.from(process.env.ENCRYPTION_KEY, "base64").toString("hex"))'`);
    expect(problems[0]).toContain("openssl base64 -d");
    expect(problems[0]).not.toContain(key);
    // The one-liner gives the key the configuration accepts.
    const hex = Buffer.from(key, "base64").toString("hex");
    expect(loadConfig(baseEnv({ ENCRYPTION_KEY: hex })).encryption.current.reveal()).toBe(hex);
  });

  it("gives no base64 hint to a value that is not 32 bytes of base64", () => {
    for (const key of [randomBytes(33).toString("base64"), `${"!".repeat(43)}=`, "ab".repeat(31)]) {
      const problems = problemsOf(baseEnv({ ENCRYPTION_KEY: key }));
      expect(problems[0]).toMatch(/^ENCRYPTION_KEY must be exactly 64 hex characters/);
      expect(problems[0]).not.toContain("base64");
    }
  });
});

describe("loadConfig JWT verifier", () => {
  it("rejects a 31-byte KEYPORT_JWT_SECRET and says it needs at least 32 bytes", () => {
    const problems = problemsOf(baseEnv({ KEYPORT_JWT_SECRET: "s".repeat(31) }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("KEYPORT_JWT_SECRET");
    expect(problems[0]).toContain("at least 32 bytes");
  });

  it("accepts exactly 32 bytes, counting UTF-8 bytes rather than characters", () => {
    expect(loadConfig(baseEnv({ KEYPORT_JWT_SECRET: "s".repeat(32) })).jwt.verifier.kind).toBe("secret");
    expect(loadConfig(baseEnv({ KEYPORT_JWT_SECRET: "é".repeat(16) })).jwt.verifier.kind).toBe("secret");
    expect(problemsOf(baseEnv({ KEYPORT_JWT_SECRET: "é".repeat(15) }))[0]).toContain("at least 32 bytes");
  });

  it("requires a secret as long as the hash for HS384 and HS512 (RFC 7518 §3.2)", () => {
    expect(problemsOf(baseEnv({ KEYPORT_JWT_ALGORITHM: "HS384", KEYPORT_JWT_SECRET: "s".repeat(47) }))[0]).toContain(
      "at least 48 bytes",
    );
    expect(problemsOf(baseEnv({ KEYPORT_JWT_ALGORITHM: "HS512", KEYPORT_JWT_SECRET: "s".repeat(63) }))[0]).toContain(
      "at least 64 bytes",
    );
    const config = loadConfig(baseEnv({ KEYPORT_JWT_ALGORITHM: "HS512", KEYPORT_JWT_SECRET: "s".repeat(64) }));
    expect(config.jwt.verifier).toMatchObject({ kind: "secret", algorithm: "HS512" });
  });

  it("requires exactly one verifier", () => {
    expect(problemsOf({ ENCRYPTION_KEY })[0]).toContain("a JWT verifier is required");
    expect(problemsOf(baseEnv({ KEYPORT_JWT_JWKS_URL: "https://idp.example/jwks.json" }))[0]).toBe(
      "set exactly one of KEYPORT_JWT_SECRET, KEYPORT_JWT_PUBLIC_KEY, KEYPORT_JWT_JWKS_URL",
    );
  });

  it.each(["RS256", "none", "hs256", "ES256"])("rejects algorithm %s with a secret", (algorithm) => {
    const problems = problemsOf(baseEnv({ KEYPORT_JWT_ALGORITHM: algorithm }));
    expect(problems).toEqual([`KEYPORT_JWT_ALGORITHM "${algorithm}" does not fit KEYPORT_JWT_SECRET: use HS256, HS384 or HS512`]);
  });

  it.each(["HS256", "none", "rs256"])("rejects algorithm %s with a public key or JWKS", (algorithm) => {
    for (const source of [{ KEYPORT_JWT_PUBLIC_KEY: PEM }, { KEYPORT_JWT_JWKS_URL: "https://idp.example/jwks.json" }]) {
      const problems = problemsOf({ ENCRYPTION_KEY, KEYPORT_JWT_ALGORITHM: algorithm, ...source });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`KEYPORT_JWT_ALGORITHM "${algorithm}" does not fit a public key`);
    }
  });

  it("reads a PEM public key with escaped newlines and defaults to RS256", () => {
    const config = loadConfig({ ENCRYPTION_KEY, KEYPORT_JWT_PUBLIC_KEY: PEM.replace(/\n/g, "\\n") });
    expect(config.jwt.verifier).toEqual({ kind: "public-key", algorithm: "RS256", publicKeyPem: PEM });
  });

  it("rejects a public key that is not a PEM SPKI key", () => {
    const problems = problemsOf({ ENCRYPTION_KEY, KEYPORT_JWT_PUBLIC_KEY: "-----BEGIN RSA PUBLIC KEY-----\nAAAA" });
    expect(problems).toEqual(["KEYPORT_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)"]);
  });

  it("reads a JWKS URL with a configured algorithm", () => {
    const config = loadConfig({
      ENCRYPTION_KEY,
      KEYPORT_JWT_JWKS_URL: "https://idp.example/.well-known/jwks.json",
      KEYPORT_JWT_ALGORITHM: "ES256",
    });
    expect(config.jwt.verifier).toEqual({
      kind: "jwks",
      algorithm: "ES256",
      jwksUrl: "https://idp.example/.well-known/jwks.json",
    });
  });
});

describe("loadConfig tiers", () => {
  const tiersJson = JSON.stringify({
    free: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: false },
    pro: { requestsPerMinute: 0, requestsPerDay: 1000, byokAllowed: true },
  });

  it("replaces the default tiers with KEYPORT_TIERS", () => {
    const config = loadConfig(baseEnv({ KEYPORT_TIERS: tiersJson, KEYPORT_DEFAULT_TIER: "free" }));
    expect(config.tiers).toEqual({
      free: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: false },
      pro: { requestsPerMinute: 0, requestsPerDay: 1000, byokAllowed: true },
    });
    expect(config.defaultTier).toBe("free");
  });

  it("drops unknown fields of a tier", () => {
    const config = loadConfig(
      baseEnv({
        KEYPORT_TIERS: JSON.stringify({ community: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: true, admin: true } }),
      }),
    );
    expect(config.tiers["community"]).toEqual({ requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: true });
  });

  it("needs the default tier to be one of the configured tiers", () => {
    expect(problemsOf(baseEnv({ KEYPORT_TIERS: tiersJson }))).toEqual([
      'KEYPORT_DEFAULT_TIER "community" is not a configured tier',
    ]);
  });

  it.each(["constructor", "toString", "__proto__", "hasOwnProperty"])(
    "does not accept the inherited property %s as the default tier",
    (name) => {
      expect(problemsOf(baseEnv({ KEYPORT_DEFAULT_TIER: name }))).toEqual([
        `KEYPORT_DEFAULT_TIER "${name}" is not a configured tier`,
      ]);
    },
  );

  it("rejects KEYPORT_TIERS that is not JSON, or not an object", () => {
    expect(problemsOf(baseEnv({ KEYPORT_TIERS: "{community:1}" }))[0]).toMatch(/^KEYPORT_TIERS must be JSON like /);
    for (const raw of ["[]", "null", "3", '"community"']) {
      expect(problemsOf(baseEnv({ KEYPORT_TIERS: raw }))[0]).toBe("KEYPORT_TIERS must be a JSON object of tier name to limits");
    }
  });

  it.each([
    ["a negative limit", { requestsPerMinute: -1, requestsPerDay: 1, byokAllowed: false }],
    ["a fractional limit", { requestsPerMinute: 1.5, requestsPerDay: 1, byokAllowed: false }],
    // Integers to JavaScript, but past exact counting: the limiter would refuse every call.
    ["a limit of 1e300", { requestsPerMinute: 1e300, requestsPerDay: 1, byokAllowed: false }],
    ["a limit past 2^53", { requestsPerMinute: 1, requestsPerDay: 2 ** 53, byokAllowed: false }],
    ["a limit over a billion", { requestsPerMinute: 1, requestsPerDay: 1_000_000_001, byokAllowed: false }],
    ["a string limit", { requestsPerMinute: "10", requestsPerDay: 1, byokAllowed: false }],
    ["a missing limit", { requestsPerMinute: 1, byokAllowed: false }],
    ["a string flag", { requestsPerMinute: 1, requestsPerDay: 1, byokAllowed: "true" }],
    ["null", null],
  ])("rejects a tier with %s", (_name, tier) => {
    const problems = problemsOf(baseEnv({ KEYPORT_TIERS: JSON.stringify({ community: tier }) }));
    expect(problems[0]).toBe(
      'KEYPORT_TIERS: tier "community" needs requestsPerMinute and requestsPerDay (integers from 0 to 1000000000) and byokAllowed (boolean)',
    );
  });

  it("reads a tier's platformMonthlyBudgetUsd as nano-USD; null or absent is no cap", () => {
    const config = loadConfig(
      baseEnv({
        KEYPORT_TIERS: JSON.stringify({
          community: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: false, platformMonthlyBudgetUsd: 1.25 },
          premium: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: true, platformMonthlyBudgetUsd: null },
          zero: { requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: true, platformMonthlyBudgetUsd: 0 },
        }),
      }),
    );
    expect(config.tiers["community"]).toEqual({ requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: false, platformMonthlyBudgetNanoUsd: 1_250_000_000 });
    expect(config.tiers["premium"]).toEqual({ requestsPerMinute: 1, requestsPerDay: 2, byokAllowed: true });
    expect(config.tiers["zero"]?.platformMonthlyBudgetNanoUsd).toBe(0);
  });

  it.each([[-1], [0.0000001], [1_000_001], ["5"], [true]])("rejects a platformMonthlyBudgetUsd of %j", (allowance) => {
    const problems = problemsOf(
      baseEnv({ KEYPORT_TIERS: JSON.stringify({ community: { requestsPerMinute: 1, requestsPerDay: 1, byokAllowed: false, platformMonthlyBudgetUsd: allowance } }) }),
    );
    expect(problems[0]).toBe('KEYPORT_TIERS: tier "community" platformMonthlyBudgetUsd must be a number of USD from 0 to 1000000 (at most 6 decimals)');
  });

  it.each(["Gold", "__proto__", "9lives", "a b", "x".repeat(33)])("rejects the tier name %s", (name) => {
    const raw = `{${JSON.stringify(name)}:{"requestsPerMinute":1,"requestsPerDay":1,"byokAllowed":false},"community":{"requestsPerMinute":1,"requestsPerDay":1,"byokAllowed":false}}`;
    const problems = problemsOf(baseEnv({ KEYPORT_TIERS: raw }));
    expect(problems).toEqual([`KEYPORT_TIERS: tier name "${name}" must match ^[a-z][a-z0-9_-]{0,31}$`]);
  });
});

describe("loadConfig DATABASE_URL", () => {
  it.each(["postgres://keyport:pw@db:5432/keyport", "postgresql://db/keyport"])("reads %s as PostgreSQL", (url) => {
    const config = loadConfig(baseEnv({ DATABASE_URL: url }));
    expect(config.database.kind).toBe("postgres");
    if (config.database.kind === "postgres") expect(config.database.url.reveal()).toBe(url);
    expect(JSON.stringify(config.database)).not.toContain("pw@");
  });

  it("reads sqlite:<path> relative to the working directory, or absolute", () => {
    expect(loadConfig(baseEnv({ DATABASE_URL: "sqlite:./var/k.db" })).database).toEqual({
      kind: "sqlite",
      path: path.resolve("var/k.db"),
    });
    expect(loadConfig(baseEnv({ DATABASE_URL: "sqlite:/srv/keyport.db" })).database).toEqual({
      kind: "sqlite",
      path: "/srv/keyport.db",
    });
  });

  it.each(["mysql://db/keyport", "file:keyport.db", "keyport.db", "POSTGRES://db", "sqlite:", "sqlite:  "])(
    "rejects %s",
    (url) => {
      expect(problemsOf(baseEnv({ DATABASE_URL: url }))).toEqual([
        "DATABASE_URL must be postgres://… (PostgreSQL) or sqlite:<path>; leave it unset for ./data/keyport.db",
      ]);
    },
  );
});

describe("loadConfig integer settings", () => {
  /** Every integer setting, found in the schema itself: a new one is covered without listing it here. */
  const settings = Object.entries(envSchema.shape).flatMap(([name, schema]) => {
    const range = integerSettingRanges.get(schema);
    return range === undefined ? [] : [{ name, ...range }];
  });

  it("finds the integer settings in the schema", () => {
    expect(settings.map((setting) => setting.name)).toEqual(
      expect.arrayContaining(["PORT", "KEYPORT_KEY_CACHE_TTL_MS", "KEYPORT_UPSTREAM_RETRIES", "KEYPORT_KEY_CHECKS_PER_MINUTE"]),
    );
    for (const { name, fallback, min, max } of settings) {
      expect(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= fallback && fallback <= max, name).toBe(true);
    }
  });

  it("reads the shutdown delay and drain timeout: no delay and 25 s by default, as set otherwise", () => {
    expect(loadConfig(baseEnv()).shutdown).toEqual({ delayMs: 0, drainTimeoutMs: 25_000 });
    expect(loadConfig(baseEnv({ KEYPORT_SHUTDOWN_DELAY_MS: "5000", KEYPORT_DRAIN_TIMEOUT_MS: "20000" })).shutdown).toEqual({ delayMs: 5_000, drainTimeoutMs: 20_000 });
    expect(problemsOf(baseEnv({ KEYPORT_SHUTDOWN_DELAY_MS: "-1", KEYPORT_DRAIN_TIMEOUT_MS: "600001" }))).toEqual([
      "KEYPORT_SHUTDOWN_DELAY_MS must be an integer from 0 to 120000",
      "KEYPORT_DRAIN_TIMEOUT_MS must be an integer from 0 to 600000",
    ]);
    expect(problemsOf(baseEnv({ KEYPORT_DRAIN_TIMEOUT_MS: "20s" }))).toEqual(["KEYPORT_DRAIN_TIMEOUT_MS must be an integer from 0 to 600000"]);
  });

  it("refuses a key cache TTL of 0 with a message instead of failing the start", () => {
    expect(problemsOf(baseEnv({ KEYPORT_KEY_CACHE_TTL_MS: "0" }))).toEqual(["KEYPORT_KEY_CACHE_TTL_MS must be an integer from 1 to 3600000"]);
  });

  it.each(settings)("$name: refuses every value outside [$min, $max] and every spelling that is not decimal digits", ({ name, min, max }) => {
    const refused = ["abc", "NaN", "Infinity", "-Infinity", "-1", "1.5", "1e3", "0x10", "0b1", "+1", "1 0", "1_000", "9".repeat(400), String(max + 1)];
    if (min > 0) refused.push(String(min - 1), "0");
    for (const value of refused) {
      expect(problemsOf(baseEnv({ [name]: value })), `${name}=${value}`).toEqual([`${name} must be an integer from ${min} to ${max}`]);
    }
  });

  it.each(settings)("$name: accepts $min and $max, and is $fallback when blank", ({ name, fallback, min, max }) => {
    const read = (value: string) => JSON.stringify(loadConfig(baseEnv({ [name]: value })));
    expect(read(String(min))).not.toBe(read(String(max)));
    expect(read(` ${max} `)).toBe(read(String(max)));
    expect(read("")).toBe(read(String(fallback)));
  });
});

describe("loadConfig KEYPORT_TRUST_PROXY", () => {
  it.each([
    ["false", false],
    ["true", true],
    ["127.0.0.1", ["127.0.0.1"]],
    [" 10.0.0.0/8 , fd00::/8 ", ["10.0.0.0/8", "fd00::/8"]],
    ["::1/128,192.168.0.0/16", ["::1/128", "192.168.0.0/16"]],
  ] as const)("reads %j", (raw, expected) => {
    expect(loadConfig(baseEnv({ KEYPORT_TRUST_PROXY: raw })).trustProxy).toEqual(expected);
  });

  // A hop count trusts whatever a directly connected client claims in enough forwarded hops.
  it.each(["yes", "1", "2", "10.0.0.0/33", "::1/129", "10.0.0.0/8,bogus", "10.0.0.1/8/1", "10.0.0.0/-1", "10.0.0.0/"])("refuses %j", (raw) => {
    expect(problemsOf(baseEnv({ KEYPORT_TRUST_PROXY: raw }))).toEqual([
      "KEYPORT_TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses and CIDR ranges (e.g. 10.0.0.0/8,fd00::/8)",
    ]);
  });
});

describe("loadConfig platform call headers", () => {
  it("sends no account and allows no beta by default", () => {
    const config = loadConfig(baseEnv());
    expect(config.platformOpenAiAccount).toEqual({ organization: undefined, project: undefined });
    expect(config.platformBetas).toEqual([]);
  });

  it("reads the operator's organization, project and beta list", () => {
    const config = loadConfig(
      baseEnv({
        PLATFORM_OPENAI_ORGANIZATION: "org-abc",
        PLATFORM_OPENAI_PROJECT: "proj_def",
        KEYPORT_PLATFORM_BETA_HEADERS: " assistants=v2 , prompt-caching-2024-07-31,,anthropic-beta",
      }),
    );
    expect(config.platformOpenAiAccount).toEqual({ organization: "org-abc", project: "proj_def" });
    expect(config.platformBetas).toEqual(["assistants=v2", "prompt-caching-2024-07-31", "anthropic-beta"]);
  });

  it.each([
    ["PLATFORM_OPENAI_ORGANIZATION", { PLATFORM_OPENAI_ORGANIZATION: "org abc" }],
    ["PLATFORM_OPENAI_PROJECT", { PLATFORM_OPENAI_PROJECT: "proj_\u00e9" }],
    ["KEYPORT_PLATFORM_BETA_HEADERS", { KEYPORT_PLATFORM_BETA_HEADERS: "assistants=v2,two words" }],
  ] as [string, Env][])("refuses a %s a header cannot carry", (name, overrides) => {
    const problems = problemsOf(baseEnv(overrides));
    expect(problems.some((problem) => problem.startsWith(`${name} `)), problems.join("\n")).toBe(true);
  });
});

describe("loadConfig metrics and access log", () => {
  const ADMIN = "a".repeat(32);

  it("defaults: /metrics on the main port for the operator, the access log on", () => {
    const config = loadConfig(baseEnv());
    expect(config.observability).toEqual({ metrics: { port: undefined, host: "127.0.0.1", auth: "operator" }, accessLog: true });
  });

  it("a port of its own is open by default and binds to HOST unless KEYPORT_METRICS_HOST says otherwise", () => {
    expect(loadConfig(baseEnv({ KEYPORT_METRICS_PORT: "9464", HOST: "0.0.0.0" })).observability.metrics).toEqual({ port: 9464, host: "0.0.0.0", auth: "none" });
    expect(loadConfig(baseEnv({ KEYPORT_METRICS_PORT: "9464", KEYPORT_METRICS_HOST: "10.0.0.5" })).observability.metrics.host).toBe("10.0.0.5");
    expect(loadConfig(baseEnv({ KEYPORT_METRICS_PORT: "9464", KEYPORT_METRICS_AUTH: "operator", KEYPORT_ADMIN_TOKEN: ADMIN })).observability.metrics.auth).toBe("operator");
    expect(loadConfig(baseEnv({ KEYPORT_METRICS_AUTH: "none" })).observability.metrics.auth).toBe("none");
  });

  it.each(["0", "65536", "-1", "1e3", "abc", "80.5"])("refuses KEYPORT_METRICS_PORT=%s", (value) => {
    expect(problemsOf(baseEnv({ KEYPORT_METRICS_PORT: value }))).toEqual([
      "KEYPORT_METRICS_PORT must be a port number from 1 to 65535 (unset: /metrics is served on PORT)",
    ]);
  });

  it("refuses the main port as the metrics port, and operator auth without an operator token", () => {
    expect(problemsOf(baseEnv({ PORT: "9000", KEYPORT_METRICS_PORT: "9000" }))).toEqual([
      "KEYPORT_METRICS_PORT must differ from PORT (leave it unset to serve /metrics on PORT)",
    ]);
    expect(problemsOf(baseEnv({ KEYPORT_METRICS_AUTH: "operator" }))).toEqual([
      "KEYPORT_METRICS_AUTH=operator needs KEYPORT_ADMIN_TOKEN (the token the scraper sends)",
    ]);
  });

  it("KEYPORT_ACCESS_LOG=false switches the access log off; other values are refused", () => {
    expect(loadConfig(baseEnv({ KEYPORT_ACCESS_LOG: "false" })).observability.accessLog).toBe(false);
    expect(loadConfig(baseEnv({ KEYPORT_ACCESS_LOG: "true" })).observability.accessLog).toBe(true);
    expect(problemsOf(baseEnv({ KEYPORT_ACCESS_LOG: "off" as "false" }))[0]).toMatch(/^KEYPORT_ACCESS_LOG /);
    expect(problemsOf(baseEnv({ KEYPORT_METRICS_AUTH: "basic" as "none" }))[0]).toMatch(/^KEYPORT_METRICS_AUTH /);
  });
});
