import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cleanEnv, createCliRunner } from "../cli/cli-process.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { openAiThrough } from "../gateway/gateway-clients.js";
import { startKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const CALLS = 5;

/**
 * A SIGTERM-style stop while PostgreSQL cannot be reached: the writer cannot flush, so the usage
 * journal stays, and the next start on the same data directory writes the records it holds, with
 * their real figures, before it serves.
 */
await describePostgres("usage journal across a stop with the database down", (postgresUrl) => {
  const schema = createTestSchemaName();
  // The schema's master key: every instance on it needs the same one.
  const encryptionKey = randomBytes(32).toString("hex");
  let link: TcpProxy;
  let mock: MockProvider;
  let dataDir: string;

  beforeAll(async () => {
    link = await startTcpProxy(new URL(postgresUrl).host);
    mock = await startMockProvider({ acceptUnknownKeys: true });
    dataDir = mkdtempSync(path.join(tmpdir(), "keyport-journal-restart-"));
  });
  afterAll(async () => {
    link.restore();
    link.resume();
    await link.close();
    await mock.close();
    await dropTestSchema(postgresUrl, schema);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps the journal when the last flush fails and the next start records every call from it", { timeout: 60_000 }, async () => {
    // One deployment's secrets across the restart.
    const env = {
      DATABASE_URL: link.urlFor(postgresUrl),
      PLATFORM_OPENAI_API_KEY: openAiKey(),
      ENCRYPTION_KEY: encryptionKey,
      KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
    };
    const first = await startKeyport({ dialect: "postgres", postgresSchema: schema, dataDir, mock, env });
    // community: platform key only, so once the owner's limits are cached (the first call, while
    // the database is up) calls need no database; budgets fail closed on an owner not yet known.
    const token = await first.token("journal-user", { tier: "community" });
    const requestIds: string[] = [];
    for (let index = 0; index < CALLS; index += 1) {
      if (index === 1) link.cut();
      const { response } = await openAiThrough(first.url, token)
        .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `call ${index}` }] })
        .withResponse();
      requestIds.push(response.headers.get("x-request-id") ?? "");
    }
    await first.app.close();
    expect(first.logs.some((line) => line.includes("Usage records lost at shutdown"))).toBe(true);
    const journal = path.join(dataDir, "usage-journal");
    expect(readdirSync(journal).length).toBeGreaterThan(0);

    link.restore();
    const second = await startKeyport({ dialect: "postgres", postgresSchema: schema, dataDir, mock, env });
    try {
      expect(second.logs.some((line) => line.includes("usage journal replayed"))).toBe(true);
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        const rows = await client.query<{ request_id: string; status: string; input_tokens: string | null; output_tokens: string | null; cost_nano_usd: string | null }>(
          `select request_id, status, input_tokens, output_tokens, cost_nano_usd from "${schema}".usage_records order by created_at`,
        );
        expect(rows.rows.map((row) => row.request_id).sort()).toEqual([...requestIds].sort());
        // The end lines held the real figures: nothing was left unknown.
        for (const row of rows.rows) {
          expect(row.status).toBe("ok");
          expect(Number(row.input_tokens)).toBeGreaterThan(0);
          expect(Number(row.output_tokens)).toBeGreaterThan(0);
          expect(Number(row.cost_nano_usd)).toBeGreaterThan(0);
        }
      } finally {
        await client.end();
      }
      // The old journal is gone; only the running instance's own remains.
      expect(readdirSync(journal).every((name) => name.includes(`~${process.pid}-`))).toBe(true);
    } finally {
      await second.app.close();
    }
  });

  it("refuses to start, in one sentence, when the data directory cannot hold the journal", { timeout: 60_000 }, async () => {
    const cli = createCliRunner();
    const notADirectory = path.join(dataDir, "a-file");
    writeFileSync(notADirectory, "");
    try {
      const parsed = new URL(postgresUrl);
      parsed.searchParams.set("options", `-c search_path=${schema}`);
      const result = await cli.run(["serve"], {
        cwd: dataDir,
        env: cleanEnv({
          NODE_ENV: "production",
          PORT: "0",
          KEYPORT_DATA_DIR: path.join(notADirectory, "data"),
          DATABASE_URL: parsed.toString(),
          ENCRYPTION_KEY: encryptionKey,
          KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
        }),
      });
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stderr).toContain(`Keyport cannot start: the usage journal cannot be written in ${path.join(notADirectory, "data", "usage-journal")} (ENOTDIR)`);
      expect(result.stderr).not.toMatch(/^\s+at /m);
    } finally {
      await cli.killAll();
    }
  });
});
