import type { ExpressionBuilder, Kysely, Selectable } from "kysely";
import { NOTIFICATION_EVENT_TYPES, NOTIFICATION_TARGETS, type NotificationTarget } from "../../lib/notification-events.js";
import type { ClaimedDelivery, DeliveryOutcome, DeliveryState, NotificationDelivery, NotificationRepo } from "../ports.js";
import { toAuditEvent } from "./audit-repo.js";
import { toMember, toRowLimit, toSafeInteger } from "./row-values.js";
import type { Database, NotificationDeliveriesTable } from "./schema.js";

const DELIVERY_STATES: readonly DeliveryState[] = ["pending", "delivered", "failed", "skipped"];

function toDelivery(row: Selectable<NotificationDeliveriesTable>): NotificationDelivery {
  return {
    eventId: row.event_id,
    target: toMember(row.target, NOTIFICATION_TARGETS, "notification_deliveries.target"),
    state: toMember(row.state, DELIVERY_STATES, "notification_deliveries.state"),
    attempts: toSafeInteger(row.attempts, "notification_deliveries.attempts"),
    nextAttemptAt: row.next_attempt_at,
    lastAttemptAt: row.last_attempt_at,
    lastError: row.last_error,
    deliveredAt: row.delivered_at,
    createdAt: row.created_at,
  };
}

/** A pending row that is due at `now` and not leased by a live claim. */
function isClaimable(eb: ExpressionBuilder<Database, "notification_deliveries">, now: string) {
  return eb.and([
    eb("state", "=", "pending"),
    eb("next_attempt_at", "<=", now),
    eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]),
  ]);
}

/** Column values an outcome writes. */
function outcomeValues(outcome: DeliveryOutcome) {
  switch (outcome.state) {
    case "delivered":
      return { state: "delivered", next_attempt_at: null, last_attempt_at: outcome.at, last_error: null, delivered_at: outcome.at };
    case "pending":
      return { state: "pending", next_attempt_at: outcome.nextAttemptAt, last_attempt_at: outcome.at, last_error: outcome.error };
    case "failed":
      return { state: "failed", next_attempt_at: null, last_attempt_at: outcome.at, last_error: outcome.error };
    case "skipped":
      return { state: "skipped", next_attempt_at: null, last_error: outcome.reason };
  }
}

/** The notification outbox: deliveries claimed under a lease, their outcomes, the owner's list. */
export function createNotificationRepo(db: Kysely<Database>): NotificationRepo {
  return {
    async claimDue({ now, leaseUntil, claimToken, limit }): Promise<ClaimedDelivery[]> {
      const rowLimit = toRowLimit(limit);
      if (rowLimit === 0) return [];
      // The candidates are read and leased in one statement. The outer WHERE repeats the
      // conditions: on PostgreSQL a row another instance leased meanwhile is re-checked after its
      // lock is released and no longer matches, so it is skipped rather than leased twice. SQLite
      // has one writer at a time.
      const claimed = await db
        .updateTable("notification_deliveries")
        .set({ claimed_until: leaseUntil, claim_token: claimToken })
        .where((eb) =>
          eb.and([
            isClaimable(eb, now),
            eb(
              eb.refTuple("event_id", "target"),
              "in",
              eb
                .selectFrom("notification_deliveries")
                .select(["event_id", "target"])
                .where((inner) => isClaimable(inner, now))
                .orderBy("next_attempt_at")
                .limit(rowLimit)
                .$asTuple("event_id", "target"),
            ),
          ]),
        )
        .returningAll()
        .execute();
      if (claimed.length === 0) return [];
      const events = await db
        .selectFrom("audit_events")
        .selectAll()
        .where(
          "id",
          "in",
          claimed.map((row) => row.event_id),
        )
        .execute();
      const byId = new Map(events.map((row) => [row.id, toAuditEvent(row)]));
      return claimed.flatMap((row) => {
        const event = byId.get(row.event_id);
        return event === undefined ? [] : [{ delivery: toDelivery(row), event, claimToken }];
      });
    },

    async finish(eventId: string, target: NotificationTarget, claimToken: string, outcome: DeliveryOutcome): Promise<boolean> {
      const result = await db
        .updateTable("notification_deliveries")
        .set((eb) => ({
          ...outcomeValues(outcome),
          attempts: outcome.state === "skipped" ? eb.ref("attempts") : eb("attempts", "+", 1),
          claimed_until: null,
          claim_token: null,
        }))
        .where("event_id", "=", eventId)
        .where("target", "=", target)
        .where("claim_token", "=", claimToken)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async release(claimToken: string): Promise<void> {
      await db
        .updateTable("notification_deliveries")
        .set({ claimed_until: null, claim_token: null })
        .where("claim_token", "=", claimToken)
        .execute();
    },

    async listEvents(owner, options) {
      const rowLimit = toRowLimit(options.limit);
      if (rowLimit === 0) return [];
      let query = db
        .selectFrom("audit_events")
        .selectAll()
        .where("owner", "=", owner)
        .where("type", "in", [...NOTIFICATION_EVENT_TYPES])
        // Events stored before notifications existed have no deliveries and are not listed.
        .where((eb) => eb.exists(eb.selectFrom("notification_deliveries").select("event_id").whereRef("event_id", "=", "audit_events.id")));
      if (options.before !== undefined) query = query.where("id", "<", options.before);
      const events = await query.orderBy("id", "desc").limit(rowLimit).execute();
      if (events.length === 0) return [];
      const deliveries = await db
        .selectFrom("notification_deliveries")
        .selectAll()
        .where(
          "event_id",
          "in",
          events.map((row) => row.id),
        )
        .orderBy("event_id")
        .orderBy("target")
        .execute();
      const byEvent = new Map<string, NotificationDelivery[]>();
      for (const row of deliveries) {
        const list = byEvent.get(row.event_id) ?? [];
        list.push(toDelivery(row));
        byEvent.set(row.event_id, list);
      }
      return events.map((row) => ({ event: toAuditEvent(row), deliveries: byEvent.get(row.id) ?? [] }));
    },
  };
}
