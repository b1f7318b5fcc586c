import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { buildApp, type KeyportApp } from "../../src/app.js";
import { signDevToken } from "../../src/auth/dev-token.js";
import { loadConfig } from "../../src/config/load-config.js";
import type { Config } from "../../src/config/config-schema.js";
import type { Clock } from "../../src/lib/clock.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { createTestSchemaName, dropTestSchema, postgresTestUrl } from "./postgres.js";

export type Dialect = "sqlite" | "postgres";

export type TestResponse = {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read response fields freely
};

export type RequestOptions = {
  token?: string | undefined;
  body?: unknown;
  /** Sent as is, instead of `JSON.stringify(body)`. */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
};

export type TestKeyport = {
  app: KeyportApp;
  config: Config;
  mock: MockProvider;
  url: string;
  dataDir: string;
  /** Every log line Keyport wrote, at debug level. */
  logs: string[];
  env: Record<string, string>;
  token(sub: string, claims?: { tier?: string; owner?: string }): Promise<string>;
  request(method: string, route: string, options?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
};

export type StartOptions = {
  dialect?: Dialect;
  env?: Record<string, string>;
  /** Reuse a mock provider (and its key behaviours) instead of starting one. */
  mock?: MockProvider;
  /** Reuse a data directory / PostgreSQL schema from an earlier instance (restart). */
  dataDir?: string;
  postgresSchema?: string;
  /** Prefix for Redis keys and channels; instances that share one act as one deployment. */
  redisPrefix?: string;
  clock?: Clock;
};

/**
 * Starts Keyport for a test over real HTTP on a random port, with a real SQLite file (or an
 * isolated PostgreSQL schema) and the mock provider as upstream. Log lines are captured.
 */
export async function startKeyport(options: StartOptions = {}): Promise<TestKeyport> {
  const dialect = options.dialect ?? "sqlite";
  const mock = options.mock ?? (await startMockProvider({ acceptUnknownKeys: false }));
  const ownsMock = options.mock === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), "keyport-test-"));
  const schema = dialect === "postgres" ? (options.postgresSchema ?? createTestSchemaName()) : undefined;
  const env: Record<string, string> = {
    NODE_ENV: "test",
    KEYPORT_DATA_DIR: dataDir,
    ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
    OPENAI_BASE_URL: mock.openaiBaseUrl,
    ANTHROPIC_BASE_URL: mock.anthropicBaseUrl,
    KEYPORT_PROVIDER_TIMEOUT_MS: "2000",
    KEYPORT_KEY_CHECKS_PER_MINUTE: "1000",
    // Every test request comes from 127.0.0.1: suites that send many bad tokens must not lock the
    // rest of their file out. Throttle tests set their own allowance.
    KEYPORT_AUTH_FAILURES_PER_MINUTE: "100000",
    LOG_LEVEL: "debug",
    ...(dialect === "postgres" ? { DATABASE_URL: requirePostgres() } : {}),
    ...(options.redisPrefix === undefined ? {} : { KEYPORT_REDIS_PREFIX: options.redisPrefix }),
    ...options.env,
  };
  const config = loadConfig(env);
  const logs: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString("utf8").split("\n").filter((line) => line !== ""));
      callback();
    },
  });
  const app = await buildApp(config, {
    logDestination,
    ...(schema === undefined ? {} : { postgresSchema: schema }),
    ...(options.redisPrefix === undefined ? {} : { redisPrefix: options.redisPrefix }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const address = await app.http.listen({ host: "127.0.0.1", port: 0 });
  const verifier = config.jwt.verifier;

  return {
    app,
    config,
    mock,
    url: address,
    dataDir,
    logs,
    env,
    async token(sub, claims = {}) {
      if (verifier.kind !== "secret") throw new Error("test tokens need KEYPORT_JWT_SECRET");
      return signDevToken({ secret: redacted(verifier.secret.reveal()), algorithm: verifier.algorithm, sub, ...claims });
    },
    async request(method, route, requestOptions = {}) {
      const headers: Record<string, string> = { ...requestOptions.headers };
      if (requestOptions.token !== undefined) headers.authorization = `Bearer ${requestOptions.token}`;
      let body: string | Buffer | undefined = requestOptions.rawBody;
      if (body === undefined && requestOptions.body !== undefined) {
        body = JSON.stringify(requestOptions.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await fetch(`${address}${route}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text === "" ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, text, body: parsed };
    },
    async close() {
      // A test's stop is not a rolling update: no shutdown delay (KEYPORT_SHUTDOWN_DELAY_MS may be at its maximum).
      await app.close({ skipDelay: true });
      if (ownsMock) await mock.close();
      if (schema !== undefined && options.postgresSchema === undefined) await dropTestSchema(requirePostgres(), schema);
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function requirePostgres(): string {
  const url = postgresTestUrl();
  if (url === undefined) throw new Error("PostgreSQL test URL is not available");
  return url;
}
