import { Migrator, sql } from "kysely";
import type { Kysely, Migration, MigrationProvider } from "kysely";
import { AppError } from "../../lib/errors.js";
import type { StoreDialectName } from "../kysely/dialect-hooks.js";
import { foundationMigration } from "./0001-foundation.js";
import { usageMigration } from "./0002-usage.js";
import { usageDailyMigration } from "./0003-usage-daily.js";
import { dropUsageKeyIndexMigration } from "./0004-drop-usage-key-index.js";
import { notificationsMigration } from "./0006-notifications.js";
import { portalSessionsMigration } from "./0007-portal-sessions.js";
import { budgetsMigration } from "./0008-budgets.js";
import { usageTierMigration } from "./0009-usage-tier.js";

/**
 * Every migration, in order. The list is static because the code runs compiled from dist/,
 * where scanning a folder would find `.js`, `.d.ts` and source maps alike. A new migration is a
 * new file plus one line here; names sort in the order they run.
 */
const MIGRATIONS: ReadonlyArray<readonly [name: string, create: (dialect: StoreDialectName) => Migration]> = [
  ["0001_foundation", foundationMigration],
  ["0002_usage", usageMigration],
  ["0003_usage_daily", usageDailyMigration],
  ["0004_drop_usage_key_index", dropUsageKeyIndexMigration],
  ["0006_notifications", notificationsMigration],
  ["0007_portal_sessions", portalSessionsMigration],
  ["0008_budgets", budgetsMigration],
  ["0009_usage_tier", usageTierMigration],
];

/** A Kysely migration provider over the static list, built for one dialect. */
export function createMigrationProvider(dialect: StoreDialectName): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return Object.fromEntries(MIGRATIONS.map(([name, create]) => [name, create(dialect)]));
    },
  };
}

/** Names of the migrations this build knows, in order. */
export function knownMigrationNames(): string[] {
  return MIGRATIONS.map(([name]) => name);
}

/**
 * Whether exactly the known migrations are recorded. A cheap check that spares the migrator's
 * catalogue introspection on every start; anything else (missing table, pending or unknown
 * migrations) goes through the migrator, which applies or reports it.
 */
async function isUpToDate<DB>(db: Kysely<DB>, dialect: StoreDialectName, schema: string | undefined): Promise<boolean> {
  const exists =
    dialect === "postgres"
      ? await sql<{ found: boolean }>`select to_regclass(quote_ident(${schema ?? "public"}) || '.kysely_migration') is not null as found`.execute(db)
      : await sql<{ found: number }>`select count(*) as found from sqlite_master where type = 'table' and name = 'kysely_migration'`.execute(db);
  const found = exists.rows[0]?.found;
  if (found !== true && found !== 1) return false;
  const table = schema === undefined ? sql.table("kysely_migration") : sql.table(`${schema}.kysely_migration`);
  const applied = await sql<{ name: string }>`select name from ${table} order by name`.execute(db);
  const known = knownMigrationNames();
  return applied.rows.length === known.length && applied.rows.every((row, index) => row.name === known[index]);
}

/**
 * Brings the schema up to date. On PostgreSQL each migration runs in a transaction (Kysely's
 * default for dialects with transactional DDL). Throws an `internal` AppError naming the failed
 * migration; the driver's error is kept as `cause` for logs only.
 *
 * @returns names of the migrations applied by this call (empty when already up to date).
 */
export async function migrateToLatest<DB>(
  db: Kysely<DB>,
  dialect: StoreDialectName,
  options: {
    /**
     * Schema of Kysely's own bookkeeping tables (PostgreSQL). Pass the schema the tables go to:
     * without it Kysely's existence check matches a `kysely_migration` table in *any* schema.
     */
    migrationTableSchema?: string;
  } = {},
): Promise<string[]> {
  if (await isUpToDate(db, dialect, options.migrationTableSchema)) return [];
  const migrator = new Migrator({
    db,
    provider: createMigrationProvider(dialect),
    ...(options.migrationTableSchema === undefined ? {} : { migrationTableSchema: options.migrationTableSchema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === "Error")?.migrationName;
    throw new AppError("internal", "Database migration failed", {
      internal: { dialect, migration: failed ?? null },
      cause: error,
    });
  }
  return (results ?? []).filter((result) => result.status === "Success").map((result) => result.migrationName);
}
