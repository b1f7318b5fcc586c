import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, it } from "vitest";

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";
const PROBE_TIMEOUT_MILLISECONDS = 2_000;

/**
 * The server PostgreSQL tests use: `TEST_POSTGRES_URL`, or the local default when it is unset.
 * `undefined` when it is set to an empty string, which turns PostgreSQL tests off (they still
 * fail under `CI=true`).
 */
export function postgresTestUrl(): string | undefined {
  const configured = process.env.TEST_POSTGRES_URL;
  if (configured === undefined) return DEFAULT_URL;
  const trimmed = configured.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** The URL with any password masked, for messages. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** Connects once with a short timeout; resolves with the reason when the server is unreachable. */
export async function probePostgres(url: string): Promise<{ reachable: true } | { reachable: false; reason: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MILLISECONDS });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
    return { reachable: true };
  } catch (error) {
    return { reachable: false, reason: error instanceof Error ? error.message : "unknown error" };
  } finally {
    await client.end().catch(() => {});
  }
}

/** A fresh schema name (`kp_test_<random>`), so parallel runs never share tables. */
export function createTestSchemaName(): string {
  return `kp_test_${randomBytes(6).toString("hex")}`;
}

const TEST_SCHEMA_PATTERN = /^kp_test_[a-z0-9_]+$/;

/** Drops the given test schemas and everything in them; refuses names that are not test schemas. */
export async function dropTestSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  for (const schema of schemas) {
    if (!TEST_SCHEMA_PATTERN.test(schema)) throw new Error(`Refusing to drop ${schema}: not a kp_test_ schema`);
  }
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    // One statement, one commit: dropping schemas one by one costs a disk flush each.
    await client.query(`drop schema if exists ${schemas.map((schema) => `"${schema}"`).join(", ")} cascade`);
  } finally {
    await client.end();
  }
}

/** Deletes every row of every table in a test schema except Kysely's migration bookkeeping. */
export async function emptyTables(url: string, schema: string): Promise<void> {
  if (!TEST_SCHEMA_PATTERN.test(schema)) throw new Error(`Refusing to empty ${schema}: not a kp_test_ schema`);
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    const tables = await client.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = $1 and table_name not like 'kysely_%'",
      [schema],
    );
    if (tables.rows.length === 0) return;
    // One round trip and one commit; DELETE is cheaper than TRUNCATE on tables this small.
    await client.query(`begin; ${tables.rows.map((row) => `delete from "${schema}"."${row.table_name}";`).join(" ")} commit;`);
  } finally {
    await client.end();
  }
}

/** Drops one test schema and everything in it. */
export async function dropTestSchema(url: string, schema: string): Promise<void> {
  await dropTestSchemas(url, [schema]);
}

/**
 * Registers `body` as a suite when PostgreSQL answers. When it does not, the suite fails under
 * `CI=true` (CI must test both dialects) and is skipped with a loud warning elsewhere.
 */
export async function describePostgres(name: string, body: (url: string) => void): Promise<void> {
  const url = postgresTestUrl();
  const probe = url === undefined ? undefined : await probePostgres(url);
  if (url !== undefined && probe?.reachable === true) {
    describe(name, () => body(url));
    return;
  }
  const reason = probe === undefined ? "TEST_POSTGRES_URL is empty" : probe.reachable ? "unknown" : probe.reason;
  const where = url === undefined ? "(no URL)" : describeUrl(url);
  if (process.env.CI === "true") {
    describe(name, () => {
      it("has a PostgreSQL server to test against", () => {
        throw new Error(`PostgreSQL is required when CI=true: ${where} is not reachable (${reason})`);
      });
    });
    return;
  }
  console.warn(`\n!!! PostgreSQL not reachable at ${where} (${reason}): PostgreSQL tests SKIPPED !!!\n`);
  describe.skip(name, () => body(url ?? DEFAULT_URL));
}
