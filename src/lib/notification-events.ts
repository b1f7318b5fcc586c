import type { AuditEventType } from "./domain.js";

/**
 * Which audit events are also notifications, and where each goes. The store reads this when it
 * writes an audit event, so any code path that audits one of these types makes it deliverable.
 */

/** Where a notification is delivered. */
export const NOTIFICATION_TARGETS = ["webhook", "operator_webhook", "email"] as const;
export type NotificationTarget = (typeof NOTIFICATION_TARGETS)[number];

/** The design's event list, plus `key.undecryptable` (the owner must re-enter the key). */
export const NOTIFICATION_EVENT_TYPES = [
  "key.created",
  "key.activated",
  "key.rotated",
  "key.deleted",
  "key.invalidated",
  "key.no_credits",
  "key.undecryptable",
  "key.fell_back_to_platform",
  "budget.threshold_reached",
  "budget.exceeded",
] as const satisfies readonly AuditEventType[];
export type NotificationEventType = (typeof NOTIFICATION_EVENT_TYPES)[number];

/**
 * Key-health and budget events: the ones worth an email. `key.fell_back_to_platform` is left out
 * because it follows the `key.invalidated` / `key.no_credits` email of the same call.
 */
const EMAIL_EVENT_TYPES: ReadonlySet<AuditEventType> = new Set<AuditEventType>([
  "key.invalidated",
  "key.no_credits",
  "key.undecryptable",
  "budget.threshold_reached",
  "budget.exceeded",
]);

const NOTIFIABLE: ReadonlySet<AuditEventType> = new Set<AuditEventType>(NOTIFICATION_EVENT_TYPES);

export function isNotificationEventType(type: AuditEventType): type is NotificationEventType {
  return NOTIFIABLE.has(type);
}

/** The targets an event of this type is queued for; empty for audit-only events. */
export function notificationTargetsFor(type: AuditEventType): readonly NotificationTarget[] {
  if (!NOTIFIABLE.has(type)) return [];
  return EMAIL_EVENT_TYPES.has(type) ? NOTIFICATION_TARGETS : ["webhook", "operator_webhook"];
}
