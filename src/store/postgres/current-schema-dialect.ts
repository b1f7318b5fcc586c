import { type DatabaseIntrospector, type DatabaseMetadata, type Kysely, PostgresDialect, type SchemaMetadata, sql, type TableMetadata } from "kysely";

/**
 * Kysely's PostgreSQL introspector lists the tables of every schema in the database, calling
 * `has_schema_privilege` on each schema's name; a schema someone else drops while that query runs
 * fails it with "schema … does not exist" (3F000). Its one user here is the migrator, which asks
 * whether its bookkeeping tables exist in Keyport's own schema, so this introspector lists only
 * the tables of the connection's current schema (the store's schema, through `search_path`).
 */
class CurrentSchemaIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<unknown>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const result = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace`.execute(this.db);
    return result.rows;
  }

  async getTables(): Promise<TableMetadata[]> {
    const result = await sql<{ name: string; schema: string; kind: string }>`
      select c.relname as name, n.nspname as schema, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'v', 'p')`.execute(this.db);
    return result.rows.map((row) => ({ name: row.name, schema: row.schema, isView: row.kind === "v", columns: [] }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

/** The PostgreSQL dialect, with an introspector that looks at the current schema only (see above). */
export class CurrentSchemaPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}
