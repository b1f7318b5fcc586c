import { type Static, Type } from "@sinclair/typebox";
import { NOTIFICATION_EVENT_TYPES, NOTIFICATION_TARGETS } from "../lib/notification-events.js";

/**
 * Schemas of the notification routes. The response objects carry an `$id`: they are registered
 * once (`NOTIFICATION_SCHEMAS`) and referenced by name, so the OpenAPI document lists them under
 * `components.schemas` and generated clients get named types.
 */

const literalUnion = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: "string", enum: [...values] });
const Timestamp = Type.String({ format: "date-time" });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const EventsQuery = Type.Object(
  {
    // Checked by the service, so every malformed cursor is one `invalid_cursor`, whatever its length.
    cursor: Type.Optional(Type.String({ description: "`nextCursor` of the previous page" })),
    limit: Type.Optional(Type.String({ pattern: "^(?:[1-9][0-9]?|100)$", description: "1 to 100, default 50" })),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

export const NotificationDeliveryObject = Type.Object(
  {
    target: literalUnion(NOTIFICATION_TARGETS.filter((target) => target !== "operator_webhook")),
    state: literalUnion(["pending", "delivered", "failed", "skipped"] as const),
    attempts: Type.Integer({ minimum: 0 }),
    lastAttemptAt: NullableTimestamp,
    nextAttemptAt: Type.Union([Timestamp, Type.Null()], { description: "when a pending delivery is tried next" }),
    deliveredAt: NullableTimestamp,
    error: Type.Union([Type.String(), Type.Null()], { description: "why the last attempt failed, or why the delivery was skipped" }),
  },
  { $id: "NotificationDelivery", additionalProperties: false },
);

export const NotificationEventObject = Type.Object(
  {
    id: Type.String({ description: "also the `webhook-id` of the event's webhooks" }),
    type: literalUnion(NOTIFICATION_EVENT_TYPES),
    createdAt: Timestamp,
    keyId: Type.Union([Type.String(), Type.Null()]),
    actor: Type.String(),
    detail: Type.Record(Type.String(), Type.Unknown()),
    deliveries: Type.Array(Type.Ref(NotificationDeliveryObject)),
  },
  { $id: "NotificationEvent", additionalProperties: false },
);

export const NotificationEventPage = Type.Object(
  { events: Type.Array(Type.Ref(NotificationEventObject)), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { $id: "NotificationEventPage", additionalProperties: false },
);

export const WebhookSecretObject = Type.Object(
  { webhookSecret: Type.String({ description: "`whsec_…`: the key for verifying webhook signatures (Standard Webhooks)" }) },
  { $id: "WebhookSecret", additionalProperties: false },
);

/** Registered on the server before the routes that reference them. */
export const NOTIFICATION_SCHEMAS = [NotificationDeliveryObject, NotificationEventObject, NotificationEventPage, WebhookSecretObject];
