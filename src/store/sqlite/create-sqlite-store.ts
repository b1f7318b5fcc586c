import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { CompiledQuery, Kysely, SqliteAdapter, SqliteDialect, SqliteDriver, sql } from "kysely";
import type { DatabaseConnection, DialectAdapter, Driver, SqliteDialectConfig } from "kysely";
import { migrateToLatest } from "../migrations/migrations.js";
import type { Store } from "../ports.js";
import { createKyselyStore } from "../kysely/create-kysely-store.js";
import type { DialectHooks } from "../kysely/dialect-hooks.js";
import type { Database, UniqueIndex } from "../kysely/schema.js";
import { createSqliteUsageWriter } from "./sqlite-usage-writer.js";

/** Options for the embedded SQLite store. */
export type SqliteStoreOptions = {
  /** Database file; its directory is created (mode 0700) when missing. `:memory:` for tests. */
  path: string;
};

const IN_MEMORY = ":memory:";

/**
 * Kysely's driver starts transactions with a deferred `BEGIN`; a deferred read that later
 * writes cannot wait for another writer (busy_timeout does not apply to the upgrade in WAL mode)
 * and fails with SQLITE_BUSY. Every store transaction writes, so take the write lock up front.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

/**
 * SQLite does roll back DDL; Kysely's adapter just does not claim it. Claiming it makes the
 * migrator run each batch of migrations in one transaction, so a crash mid-migration leaves the
 * schema as it was instead of half-built.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

function hasCode(error: unknown, code: string): error is Error & { code: string } {
  return error instanceof Error && "code" in error && error.code === code;
}

const sqliteHooks: DialectHooks = {
  name: "sqlite",
  // One connection, and Kysely runs one transaction at a time on it: already serialised.
  async lockOwner(): Promise<void> {},
  isUniqueViolation(error: unknown, index: UniqueIndex): boolean {
    // SQLite names the columns, not the index: "UNIQUE constraint failed: t.a, t.b".
    const columns = index.columns.map((column) => `${index.table}.${column}`).join(", ");
    return hasCode(error, "SQLITE_CONSTRAINT_UNIQUE") && error.message.endsWith(`: ${columns}`);
  },
  async afterSecretRemoved(db: Kysely<Database>): Promise<void> {
    // secure_delete zeroes the freed bytes in the pages; the checkpoint writes those pages back
    // and truncates the WAL, which still held the row's earlier versions.
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
  },
};

/** Creates the file with owner-only permissions before SQLite opens it, and tightens old ones. */
function prepareDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, "a", 0o600));
  chmodSync(path, 0o600);
}

function openDatabase(path: string): SqliteDatabase.Database {
  const database = new SqliteDatabase(path);
  try {
    const journalMode: unknown = database.pragma("journal_mode = WAL", { simple: true });
    if (path !== IN_MEMORY && journalMode !== "wal") throw new Error("SQLite did not switch to WAL mode");
    // NORMAL in WAL mode: never corrupts, survives a process crash; a power cut may lose the last
    // commits. FULL would put an fsync on the event loop for every usage batch (better-sqlite3 is
    // synchronous), which the gateway's throughput pays for.
    database.pragma("synchronous = NORMAL");
    database.pragma("secure_delete = ON");
    database.pragma("foreign_keys = ON");
    database.pragma("busy_timeout = 5000");
    return database;
  } catch (error) {
    database.close();
    throw error;
  }
}

/**
 * Opens (or creates) the SQLite database at `options.path`, applies the pragmas the store
 * relies on (WAL, synchronous=NORMAL, secure_delete, foreign keys, a 5 s busy timeout), runs the
 * migrations and returns the store. The database file gets mode 0600; its WAL and shared-memory
 * files inherit that mode from it.
 */
export async function createSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (options.path !== IN_MEMORY) prepareDatabaseFile(options.path);
  const database = openDatabase(options.path);
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database }) });
  try {
    await migrateToLatest(db, "sqlite");
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return createKyselyStore(db, { ...sqliteHooks, usageBatchWriter: createSqliteUsageWriter(db, database) });
}
