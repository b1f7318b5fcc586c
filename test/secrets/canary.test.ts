import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKeyport, type Dialect, type TestKeyport } from "../support/harness.js";
import { randomToken } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";

/**
 * The canary: unique plaintext keys go through every management flow (create, failed creates,
 * test, rotate, delete) with every log line captured at debug level. Afterwards no log line, no
 * response (body or headers), and no stored byte contains any of them, nor a distinctive piece.
 */
function canaryFlow(dialect: Dialect) {
  let keyport: TestKeyport;
  const seen: string[] = [];
  const canaries: string[] = [];

  function canary(prefix: string): string {
    const key = `${prefix}CANARY${randomToken(40)}${prefix.startsWith("sk-ant-") ? "AA" : ""}`;
    canaries.push(key);
    return key;
  }

  async function call(method: string, route: string, options: Parameters<TestKeyport["request"]>[2] = {}) {
    const response = await keyport.request(method, route, options);
    seen.push(response.text, JSON.stringify([...response.headers.entries()]));
    return response;
  }

  beforeAll(async () => {
    keyport = await startKeyport({ dialect, env: { KEYPORT_ON_REJECTED_KEY: "store", LOG_LEVEL: "trace" } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("never lets a plaintext key out", async () => {
    const token = await keyport.token("canary-user", { tier: "premium" });
    const valid = canary("sk-proj-");
    const rejected = canary("sk-proj-");
    const noCredits = canary("sk-ant-api03-");
    const replacement = canary("sk-proj-");
    keyport.mock.setKey(valid, "valid");
    keyport.mock.setKey(rejected, "invalid");
    keyport.mock.setKey(noCredits, "no_credits");
    keyport.mock.setKey(replacement, "valid");

    const created = await call("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: valid } });
    expect(created.status, created.text).toBe(201);
    const invalid = await call("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: rejected } });
    expect(invalid.status, invalid.text).toBe(201);
    expect(invalid.body.status).toBe("invalid");
    const anthropic = await call("POST", "/api/v1/api-keys", { token, body: { provider: "anthropic", apiKey: noCredits } });
    expect(anthropic.body.status).toBe("no_credits");

    // Failure paths: duplicate, wrong provider, inner whitespace, broken JSON, header injection.
    expect((await call("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: valid } })).status).toBe(409);
    expect((await call("POST", "/api/v1/api-keys", { token, body: { provider: "anthropic", apiKey: valid } })).status).toBe(400);
    const spaced = `${valid.slice(0, 20)} ${valid.slice(20)}`;
    expect((await call("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: spaced } })).status).toBe(400);
    const newline = `${valid}\r\nX-Injected: 1`;
    expect((await call("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey: newline } })).status).toBe(400);
    const broken = `{"provider":"openai","apiKey": ${valid}}`;
    const brokenResponse = await call("POST", "/api/v1/api-keys", {
      token,
      rawBody: broken,
      headers: { "content-type": "application/json" },
    });
    expect(brokenResponse.status).toBe(400);
    // A key sent as the bearer token is not a JWT: refused, and not echoed.
    expect((await call("GET", "/api/v1/api-keys", { token: valid })).status).toBe(401);

    const id = created.body.id as string;
    expect((await call("POST", `/api/v1/api-keys/${id}/test`, { token })).status).toBe(200);
    expect((await call("POST", `/api/v1/api-keys/${invalid.body.id}/test`, { token })).status).toBe(200);
    expect((await call("PUT", `/api/v1/api-keys/${id}/secret`, { token, body: { apiKey: replacement } })).status).toBe(200);
    expect((await call("POST", `/api/v1/api-keys/${id}/test`, { token })).status).toBe(200);
    expect((await call("GET", "/api/v1/api-keys", { token })).status).toBe(200);
    expect((await call("GET", "/api/v1/audit", { token })).status).toBe(200);
    for (const keyId of [id, invalid.body.id, anthropic.body.id]) {
      expect((await call("DELETE", `/api/v1/api-keys/${keyId}`, { token })).status).toBe(204);
    }

    // The flows above really logged at debug level, so the check below looks at real output.
    expect(keyport.logs.some((line) => line.includes('"level":20'))).toBe(true);
    const stored = await storedText(keyport, dialect);
    for (const key of canaries) {
      for (const fragment of fragmentsOf(key)) {
        expect(keyport.logs.filter((line) => line.includes(fragment)), `log lines with ${fragment}`).toEqual([]);
        expect(seen.filter((text) => text.includes(fragment)), `responses with ${fragment}`).toEqual([]);
        expect(stored.includes(fragment), `stored bytes with ${fragment}`).toBe(false);
      }
    }
  });
}

/** The key, and pieces of it long enough to identify it (a leak of half a key is a leak). */
function fragmentsOf(key: string): string[] {
  const body = key.slice(key.indexOf("CANARY"));
  return [key, body.slice(0, 16), body.slice(-16)];
}

async function storedText(keyport: TestKeyport, dialect: Dialect): Promise<string> {
  if (dialect === "sqlite") {
    const file = path.join(keyport.dataDir, "keyport.db");
    return [file, `${file}-wal`, `${file}-shm`]
      .filter((name) => existsSync(name))
      .map((name) => readFileSync(name).toString("latin1"))
      .join("\n");
  }
  const client = new pg.Client({ connectionString: keyport.env.DATABASE_URL });
  await client.connect();
  try {
    const schema = (await client.query<{ schema: string }>("select current_schema() as schema")).rows[0]?.schema;
    // Keyport's connection sets the search path; read the schema it used from its own tables.
    const tables = await client.query<{ table_schema: string; table_name: string }>(
      "select table_schema, table_name from information_schema.tables where table_schema like 'kp_test_%' and table_name in ('provider_keys','data_keys','audit_events','idempotency_keys','master_keys')",
    );
    const texts: string[] = [schema ?? ""];
    for (const row of tables.rows) {
      const result = await client.query<{ row: string }>(`select row_to_json(t)::text as row from "${row.table_schema}"."${row.table_name}" t`);
      texts.push(...result.rows.map((value) => value.row));
    }
    return texts.join("\n");
  } finally {
    await client.end();
  }
}

describe("canary on SQLite", () => canaryFlow("sqlite"));
await describePostgres("canary on PostgreSQL", () => canaryFlow("postgres"));
