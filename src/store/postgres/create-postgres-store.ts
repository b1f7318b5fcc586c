import pg from "pg";
import { Kysely, sql } from "kysely";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult, Transaction } from "kysely";
import { AppError, DependencyUnavailableError, isAppError } from "../../lib/errors.js";
import { scrubSecrets } from "../../lib/scrub.js";
import { migrateToLatest } from "../migrations/migrations.js";
import type { Store } from "../ports.js";
import { createKyselyStore } from "../kysely/create-kysely-store.js";
import { CurrentSchemaPostgresDialect } from "./current-schema-dialect.js";
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
   * Called when a pooled connection fails (for example the server restarted), idle or in use.
   * The pool drops that connection and the next query opens a new one. Default: ignore.
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

/** Socket errors that mean the server cannot be reached (or stopped answering). */
const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * SQLSTATEs of a server that will not serve this connection: class 08 (connection exception),
 * 57P01–57P03 (shut down, crashed, starting up), 53300 (too many connections).
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;

/**
 * pg reports a dropped connection, a connect timeout and a pool client that lost its
 * connection with these messages and no code.
 */
const CONNECTION_LOST_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable/;

/** Whether `error` says PostgreSQL could not be reached, rather than that a statement failed. */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // Node reports a failed connection to every address of a host as one AggregateError.
  if (error instanceof AggregateError && error.errors.some(isConnectionFailure)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (CONNECTION_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  return CONNECTION_LOST_MESSAGE.test(error.message);
}

/** What every request that needs the database answers while it is unreachable. */
function databaseUnavailable(error: unknown): DependencyUnavailableError {
  return new DependencyUnavailableError("database", "The database is temporarily unavailable; retry shortly.", {
    reason: scrubSecrets(error instanceof Error ? error.message : "unknown error"),
  });
}

/** A pooled client whose lost connection is a `DependencyUnavailableError`. */
class ReportingClient implements PostgresPoolClient {
  constructor(private readonly client: pg.PoolClient) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Streaming (a cursor) is not configured, so Kysely never passes one.
    if (typeof sqlOrCursor !== "string") throw new Error("cursor queries are not supported");
    return this.client.query(sqlOrCursor, [...parameters]).then(
      (result) => result as unknown as PostgresQueryResult<R>,
      translateConnectionFailure,
    );
  }

  release(destroy?: boolean): void {
    this.client.release(destroy);
  }
}

function translateConnectionFailure(error: unknown): never {
  throw isConnectionFailure(error) ? databaseUnavailable(error) : error;
}

/**
 * The pool as Kysely sees it: a connection that cannot be opened, or is lost under a query,
 * becomes a `DependencyUnavailableError` (503 with `retry-after` wherever it is rendered)
 * instead of a driver error that would be a 500. Statement errors pass through unchanged.
 */
function reportingUnavailable(pool: pg.Pool, onError: (error: Error) => void): PostgresPool {
  // Kysely keeps one connection object per client it is handed: hand it the same wrapper.
  const wrappers = new WeakMap<pg.PoolClient, ReportingClient>();
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect().catch(translateConnectionFailure);
      let wrapper = wrappers.get(client);
      if (wrapper === undefined) {
        // The pool listens for errors only on idle clients. A connection lost while checked out
        // fails its query and then emits `error` on the client: without a listener of its own
        // that event would end the process. The pool drops the client when it is released.
        client.on("error", onError);
        wrapper = new ReportingClient(client);
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => pool.end(),
  };
}

/**
 * A startup failure without the driver's error object: some (an unparseable URL's `TypeError`)
 * carry the whole connection string, password included, in their properties.
 */
function toStartupError(error: unknown, url: string): AppError {
  if (isAppError(error) && !(error instanceof DependencyUnavailableError)) return error;
  let password: string | undefined;
  try {
    password = decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    password = undefined;
  }
  const message =
    error instanceof DependencyUnavailableError && typeof error.internal.reason === "string"
      ? error.internal.reason
      : error instanceof AggregateError && error.errors[0] instanceof Error
        ? error.errors[0].message
        : error instanceof Error
          ? error.message
          : "unknown error";
  return new DependencyUnavailableError("database", "Could not open the PostgreSQL database", {
    reason: scrubSecrets(password === undefined ? message : message.split(password).join("[redacted]")),
  });
}

/**
 * Connects a pool to PostgreSQL, migrates the schema and returns the store. int8 columns are
 * read as JS numbers. Rejects with an `internal` AppError when the options are unusable, and with
 * a `DependencyUnavailableError` for `database` (scrubbed reason in `internal`, no driver error
 * attached) when the server cannot be reached, refuses the connection or a migration fails. Once
 * open, a lost or refused connection makes a query reject with a `DependencyUnavailableError`.
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
  const onPoolError = (error: Error) => options.onPoolError?.(error);
  // Without a listener an idle connection's error would be an unhandled 'error' event.
  pool.on("error", onPoolError);
  const db = new Kysely<Database>({ dialect: new CurrentSchemaPostgresDialect({ pool: reportingUnavailable(pool, onPoolError) }) });
  try {
    await migrate(db, options.schema);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw toStartupError(error, options.url);
  }
  return createKyselyStore(db, postgresHooks);
}
