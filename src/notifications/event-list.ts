import { AppError } from "../lib/errors.js";
import { isIdOf } from "../lib/ids.js";
import type { NotificationTarget } from "../lib/notification-events.js";
import type { AuditEvent, DeliveryState, NotificationDelivery, NotificationRepo } from "../store/ports.js";

/**
 * The targets an owner sees. The operator's webhook is the platform's own plumbing: its state
 * and errors would tell the owner about the operator's systems, so it is left out.
 */
const OWNER_TARGETS: ReadonlySet<NotificationTarget> = new Set<NotificationTarget>(["webhook", "email"]);

export type DeliveryView = {
  target: NotificationTarget;
  state: DeliveryState;
  attempts: number;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  /** Why the last attempt failed or the delivery was skipped. */
  error: string | null;
};

export type EventView = {
  id: string;
  type: AuditEvent["type"];
  createdAt: string;
  keyId: string | null;
  actor: string;
  detail: Record<string, unknown>;
  deliveries: DeliveryView[];
};

export type EventPage = { events: EventView[]; nextCursor: string | null };

function toDeliveryView(delivery: NotificationDelivery): DeliveryView {
  return {
    target: delivery.target,
    state: delivery.state,
    attempts: delivery.attempts,
    lastAttemptAt: delivery.lastAttemptAt,
    nextAttemptAt: delivery.nextAttemptAt,
    deliveredAt: delivery.deliveredAt,
    error: delivery.lastError,
  };
}

/** The owner's notification events with where each was delivered, newest first. */
export function createEventList({ notifications }: { notifications: Pick<NotificationRepo, "listEvents"> }) {
  return async function listEvents(owner: string, options: { cursor?: string | undefined; limit: number }): Promise<EventPage> {
    // A cursor is the id of the last event of a page; anything else would list from the wrong place.
    if (options.cursor !== undefined && !isIdOf("evt", options.cursor)) {
      throw new AppError("invalid_cursor", "cursor must be the nextCursor of a previous page.");
    }
    const page = await notifications.listEvents(owner, {
      ...(options.cursor === undefined ? {} : { before: options.cursor }),
      limit: options.limit + 1,
    });
    const shown = page.slice(0, options.limit);
    const last = shown.at(-1);
    return {
      events: shown.map(({ event, deliveries }) => ({
        id: event.id,
        type: event.type,
        createdAt: event.createdAt,
        keyId: event.keyId,
        actor: event.actor,
        detail: event.detail,
        deliveries: deliveries.filter((delivery) => OWNER_TARGETS.has(delivery.target)).map(toDeliveryView),
      })),
      nextCursor: page.length > options.limit && last !== undefined ? last.event.id : null,
    };
  };
}

export type ListEvents = ReturnType<typeof createEventList>;
