import type { Kysely, Selectable, Transaction } from "kysely";
import { AUDIT_EVENT_TYPES } from "../../lib/domain.js";
import type { AuditEvent, AuditRepo } from "../ports.js";
import { toMember, toRowLimit } from "./row-values.js";
import type { AuditEventsTable, Database } from "./schema.js";

function parseDetail(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("Column audit_events.detail does not hold a JSON object");
  }
  return Object.fromEntries(Object.entries(value));
}

function toAuditEvent(row: Selectable<AuditEventsTable>): AuditEvent {
  return {
    id: row.id,
    owner: row.owner,
    type: toMember(row.type, AUDIT_EVENT_TYPES, "audit_events.type"),
    keyId: row.key_id,
    actor: row.actor,
    ip: row.ip,
    userAgent: row.user_agent,
    detail: parseDetail(row.detail),
    createdAt: row.created_at,
  };
}

/**
 * Writes an audit event inside a transaction: a repository that changes something and audits it
 * calls this with its own `tx`, so the event commits together with the change.
 */
export async function writeAuditEvent(tx: Transaction<Database>, event: AuditEvent): Promise<void> {
  await insertAuditRow(tx, event);
}

async function insertAuditRow(db: Kysely<Database>, event: AuditEvent): Promise<void> {
  await db
    .insertInto("audit_events")
    .values({
      id: event.id,
      owner: event.owner,
      type: event.type,
      key_id: event.keyId,
      actor: event.actor,
      ip: event.ip,
      user_agent: event.userAgent,
      detail: JSON.stringify(event.detail),
      created_at: event.createdAt,
    })
    .execute();
}

/** The shared audit-trail repository; events are append-only. */
export function createAuditRepo(db: Kysely<Database>): AuditRepo {
  return {
    async insert(event: AuditEvent): Promise<void> {
      await insertAuditRow(db, event);
    },

    async list(owner: string, options: { before?: string; limit: number }): Promise<AuditEvent[]> {
      const rowLimit = toRowLimit(options.limit);
      if (rowLimit === 0) return [];
      let query = db.selectFrom("audit_events").selectAll().where("owner", "=", owner);
      if (options.before !== undefined) query = query.where("id", "<", options.before);
      const rows = await query.orderBy("id", "desc").limit(rowLimit).execute();
      return rows.map(toAuditEvent);
    },
  };
}
