import type { Kysely, Selectable, Transaction } from "kysely";
import { AUDIT_EVENT_TYPES } from "../../lib/domain.js";
import { notificationTargetsFor } from "../../lib/notification-events.js";
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

export function toAuditEvent(row: Selectable<AuditEventsTable>): AuditEvent {
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
 * Writes an audit event and, for a notification type, its outbox rows. Pass a transaction (`tx`)
 * so that the event and its deliveries commit together, and together with the change that caused
 * them: a repository that changes something and audits it calls this with its own `tx`.
 */
export async function writeAuditEvent(tx: Transaction<Database>, event: AuditEvent): Promise<void> {
  await insertAuditRow(tx, event);
  await queueNotificationDeliveries(tx, event);
}

/**
 * The outbox rows of an event just inserted in `tx`: one pending delivery per target, due at
 * once; nothing for an audit-only event. Any path that inserts an audit event some other way (a
 * conditional insert, say) calls this in the same transaction when its insert took effect.
 */
export async function queueNotificationDeliveries(tx: Transaction<Database>, event: AuditEvent): Promise<void> {
  const targets = notificationTargetsFor(event.type);
  if (targets.length === 0) return;
  await tx
    .insertInto("notification_deliveries")
    .values(
      targets.map((target) => ({
        event_id: event.id,
        target,
        state: "pending",
        attempts: 0,
        next_attempt_at: event.createdAt,
        claimed_until: null,
        claim_token: null,
        last_attempt_at: null,
        last_error: null,
        delivered_at: null,
        created_at: event.createdAt,
      })),
    )
    .execute();
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
      // An audit-only event is one statement; a notification commits with its outbox rows.
      if (notificationTargetsFor(event.type).length === 0) await insertAuditRow(db, event);
      else await db.transaction().execute((tx) => writeAuditEvent(tx, event));
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
