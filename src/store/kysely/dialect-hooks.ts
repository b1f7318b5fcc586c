import type { Kysely, Transaction } from "kysely";
import type { Store } from "../ports.js";
import type { Database, UniqueIndex } from "./schema.js";
import type { UsageBatchWriter } from "./usage-repo.js";

/** Which database a store runs on. */
export type StoreDialectName = Store["dialect"];

/**
 * The few places where SQLite and PostgreSQL need different code. Each dialect's factory passes
 * its hooks into the shared Kysely implementation, which stays free of dialect branches.
 */
export type DialectHooks = {
  readonly name: StoreDialectName;
  /**
   * Runs first inside a transaction that must be serialised per owner. PostgreSQL takes a
   * transaction-scoped advisory lock; SQLite needs nothing (one connection, `BEGIN IMMEDIATE`).
   */
  lockOwner(tx: Transaction<Database>, owner: string): Promise<void>;
  /** True when `error` is a violation of exactly this unique index. */
  isUniqueViolation(error: unknown, index: UniqueIndex): boolean;
  /**
   * Runs after a statement that removed or replaced secret material, so that the old bytes do
   * not outlive the call (SQLite: truncating WAL checkpoint). Must not run inside a transaction.
   */
  afterSecretRemoved(db: Kysely<Database>): Promise<void>;
  /** Replaces the portable usage batch writer (same contract); absent: Kysely statements. */
  usageBatchWriter?: UsageBatchWriter;
};
