import pg from "pg";
import { Kysely, PostgresDialect, sql } from "kysely";
import type { Transaction } from "kysely";
import { AppError, isAppError } from "../../lib/errors.js";
import { scrubSecrets } from "../../lib/scrub.js";
import { migrateToLatest } from "../migrations/migrations.js";
import type { Store } from "../ports.js";
import { createKyselyStore } from "../kysely/create-kysely-store.js";
import type { DialectHooks } from "../kysely/dialect-hooks.js";
import type { Database, UniqueIndex } from "../kysely/schema.js";

/** Options for the PostgreSQL store. */
export type PostgresStoreOptions = {
  /** Connection string, e.g. `postgres://user:password@host:5432/keyport`. */
  url: string;
  /**
   * Schema for every table; created when missing and put on each connection's `search_path`.
   * Lower-case letters, digits and `_`. Default: the server's `search_path`.
   */
  schema?: string;
  /** Maximum pool connections. Default 10. */
  poolSize?: number;
  /**
   * Called when an idle pooled connection fails (for example the server restarted). The pool
   * drops that connection and the next query opens a new one. Default: ignore.
   */
  onPoolError?: (error: Error) => void;
};

const INT8_OID = 20;
const DEFAULT_POOL_SIZE = 10;
const CONNECT_TIMEOUT_MILLISECONDS = 10_000;
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const UNIQUE_VIOLATION = "23505";

/** Money and counters are int8 columns; they fit in 2^53, so read them as numbers, not text. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error("int8 value beyond 2^53 cannot be read as a number");
  return value;
}

// Per pool, not `pg.types.setTypeParser`: the global registry would change every pg user.
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) => (oid === INT8_OID && format !== "binary" ? parseInt8 : pg.types.getTypeParser(oid, format)),
};

const postgresHooks: DialectHooks = {
  name: "postgres",
  async lockOwner(tx: Transaction<Database>, owner: string): Promise<void> {
    // Released at commit or rollback; serialises this owner's key activations across instances.
    await sql`select pg_advisory_xact_lock(hashtext(${owner}))`.execute(tx);
  },
  isUniqueViolation(error: unknown, index: UniqueIndex): boolean {
    return (
      error instanceof Error && "code" in error && error.code === UNIQUE_VIOLATION && "constraint" in error && error.constraint === index.name
    );
  },
  // PostgreSQL reclaims dead rows through VACUUM; there is no file-level scrub to do here.
  async afterSecretRemoved(): Promise<void> {},
};

/**
 * Creates the schema (when given) and applies migrations while holding a session advisory lock,
 * so instances starting together migrate one after another instead of racing on DDL.
 */
async function migrate(db: Kysely<Database>, schema: string | undefined): Promise<void> {
  const lockName = `keyport.migrate:${schema ?? ""}`;
  await db.connection().execute(async (connection) => {
    await sql`select pg_advisory_lock(hashtext(${lockName}))`.execute(connection);
    try {
      if (schema !== undefined) await connection.schema.createSchema(schema).ifNotExists().execute();
      const current = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(connection);
      const migrationTableSchema = current.rows[0]?.schema;
      if (migrationTableSchema === undefined || migrationTableSchema === null) {
        throw new AppError("internal", "PostgreSQL search_path names no existing schema");
      }
      await migrateToLatest(connection, "postgres", { migrationTableSchema });
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${lockName}))`.execute(connection);
    }
  });
}

/**
 * A startup failure without the driver's error object: some (an unparseable URL's `TypeError`)
 * carry the whole connection string, password included, in their properties.
 */
function toStartupError(error: unknown, url: string): AppError {
  if (isAppError(error)) return error;
  let password: string | undefined;
  try {
    password = decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    password = undefined;
  }
  const message = error instanceof Error ? error.message : "unknown error";
  const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : null;
  return new AppError("unavailable", "Could not open the PostgreSQL database", {
    internal: { reason: scrubSecrets(password === undefined ? message : message.split(password).join("[redacted]")), code },
  });
}

/**
 * Connects a pool to PostgreSQL, migrates the schema and returns the store. int8 columns are
 * read as JS numbers. Rejects with an `internal` AppError when the options are unusable or a
 * migration fails, and with an `unavailable` AppError (scrubbed reason in `internal`, no driver
 * error attached) when the server cannot be reached or refuses the connection.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  if (options.schema !== undefined && !SCHEMA_PATTERN.test(options.schema)) {
    throw new AppError("internal", "PostgreSQL schema name must be lower-case letters, digits and underscores");
  }
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw new AppError("internal", "PostgreSQL pool size must be a positive integer");
  }
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: options.url,
      max: poolSize,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MILLISECONDS,
      types: typeParsers,
      // A startup parameter applies to every connection the pool ever opens, reconnects included.
      ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
    });
  } catch (error) {
    throw toStartupError(error, options.url);
  }
  const onPoolError = options.onPoolError;
  // Without a listener an idle connection's error would be an unhandled 'error' event.
  pool.on("error", (error) => onPoolError?.(error));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, options.schema);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw toStartupError(error, options.url);
  }
  return createKyselyStore(db, postgresHooks);
}
