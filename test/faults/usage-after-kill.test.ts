import { randomBytes } from "node:crypto";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { Agent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { cleanEnv, type CliRunner, createCliRunner, createTempDirs, requestJson } from "../cli/cli-process.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";

/** Clients calling at once, as fast as they can. */
const CLIENTS = 12;
/** 2xx answers the clients must have received before the kill. */
const ANSWERS_BEFORE_KILL = 400;

type Instance = { url: string; kill(): Promise<void>; stdout(): string };

async function startServe(runner: CliRunner, env: Record<string, string>, cwd: string): Promise<Instance> {
  const process = runner.start(["serve"], { env, cwd });
  const [, url] = await process.waitFor(/Keyport is running at (http:\/\/[^\s]+)/);
  if (url === undefined) throw new Error("no address in the banner");
  return { url, kill: () => process.kill(), stdout: () => process.stdout() };
}

/**
 * Calls through Keyport in `CLIENTS` loops (three plain completions to one stream) until told to
 * stop or the connection dies; returns the `x-request-id` of every 2xx whose headers arrived.
 */
function loadUntilKilled(url: string, token: string, onAnswer: (count: number) => void): { stop(): void; answered: Promise<string[]> } {
  const pool = new Agent({ connections: CLIENTS });
  const ids: string[] = [];
  let stopped = false;
  const loop = async (client: number) => {
    for (let index = 0; !stopped; index += 1) {
      const stream = index % 4 === 3;
      try {
        const response = await undiciRequest(`${url}/openai/v1/chat/completions`, {
          dispatcher: pool,
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: `client ${client} call ${index}` }] }),
        });
        // A 2xx whose headers arrived counts as received, even if its body is cut by the kill.
        const id = response.headers["x-request-id"];
        if (response.statusCode < 300 && typeof id === "string") {
          ids.push(id);
          onAnswer(ids.length);
        }
        await response.body.text();
      } catch {
        return; // the process is gone
      }
    }
  };
  const loops = Array.from({ length: CLIENTS }, (_, client) => loop(client));
  return {
    stop: () => {
      stopped = true;
    },
    answered: Promise.all(loops).then(async () => {
      await pool.destroy();
      return ids;
    }),
  };
}

/**
 * SIGKILL under load, then a restart on the same data: every 2xx a client received has exactly
 * one usage record. The writer batches, so at the kill some records exist only in the usage
 * journal; the restart replays it before serving.
 */
type StoredUsage = { env: Record<string, string>; requestIds(dataDir: string): Promise<string[]> };

function killUnderLoad(dialect: "sqlite" | "postgres", database: StoredUsage) {
  const runner = createCliRunner();
  const directories = createTempDirs("keyport-kill-");
  let mock: MockProvider;

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: true, recordLimit: 0 });
  });
  afterAll(async () => {
    await runner.killAll();
    await mock.close();
    directories.removeAll();
  });

  it(`${dialect}: every 2xx answered before a SIGKILL has one usage record after the restart`, { timeout: 120_000 }, async () => {
    const dataDir = directories.make();
    const jwtSecret = randomBytes(48).toString("base64url");
    const env = cleanEnv({
      NODE_ENV: "test",
      PORT: "0",
      KEYPORT_DATA_DIR: dataDir,
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: jwtSecret,
      OPENAI_BASE_URL: mock.openaiBaseUrl,
      LOG_LEVEL: "warn",
      ...database.env,
    });
    const first = await startServe(runner, env, dataDir);
    const token = await signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub: "kill-user", tier: "premium" });
    // The owner's own key: no platform rate limit in the way of the load.
    const stored = await requestJson("POST", `${first.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey: openAiKey() } });
    expect(stored.status, JSON.stringify(stored.body)).toBe(201);

    let killing: Promise<void> | undefined;
    const load = loadUntilKilled(first.url, token, (count) => {
      if (count >= ANSWERS_BEFORE_KILL) killing ??= first.kill();
    });
    const answered = await load.answered;
    await killing;
    load.stop();
    expect(answered.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_KILL);

    const second = await startServe(runner, env, dataDir);
    try {
      const recorded = await database.requestIds(dataDir);
      const missing = answered.filter((id) => !recorded.includes(id));
      expect(missing, `${missing.length} of ${answered.length} answered calls have no usage record`).toEqual([]);
      // One record per call, however many times it was journaled and replayed.
      expect(new Set(recorded).size).toBe(recorded.length);
      // The killed instance's journal was replayed before the restart served anything.
      expect(second.stdout()).toMatch(/"msg":"usage journal replayed/);
    } finally {
      await second.kill();
    }
  });
}

describe("usage after a SIGKILL (SQLite)", () => {
  killUnderLoad("sqlite", {
    env: {},
    async requestIds(dataDir) {
      const db = new Database(path.join(dataDir, "keyport.db"), { readonly: true });
      try {
        return (db.prepare("select request_id as id from usage_records").all() as { id: string }[]).map((row) => row.id);
      } finally {
        db.close();
      }
    },
  });
});

await describePostgres("usage after a SIGKILL (PostgreSQL)", (url) => {
  const schema = createTestSchemaName();
  beforeAll(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`create schema "${schema}"`);
    } finally {
      await client.end();
    }
  });
  afterAll(async () => {
    await dropTestSchema(url, schema);
  });
  killUnderLoad("postgres", {
    env: { DATABASE_URL: withSearchPath(url, schema) },
    async requestIds() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const result = await client.query<{ id: string }>(`select request_id as id from "${schema}".usage_records`);
        return result.rows.map((row) => row.id);
      } finally {
        await client.end();
      }
    },
  });
});

/** The URL with the schema first on the `search_path` of every connection (libpq `options`). */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("options", `-c search_path=${schema}`);
  return parsed.toString();
}
