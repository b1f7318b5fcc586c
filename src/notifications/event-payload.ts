import type { AuditEvent } from "../store/ports.js";

/**
 * The JSON body of a notification webhook, in the Standard Webhooks shape (`type`, `timestamp`,
 * `data`). `data.id` is the event id, also sent as `webhook-id`. The request's IP and user agent
 * stay in the audit trail: they are not needed to react to the event.
 */
export type WebhookPayload = {
  type: string;
  timestamp: string;
  data: { id: string; owner: string; keyId: string | null; actor: string; detail: Record<string, unknown> };
};

export function toWebhookPayload(event: AuditEvent): WebhookPayload {
  return {
    type: event.type,
    timestamp: event.createdAt,
    data: { id: event.id, owner: event.owner, keyId: event.keyId, actor: event.actor, detail: event.detail },
  };
}

/** The exact bytes that are signed and sent. */
export function webhookBody(event: AuditEvent): string {
  return JSON.stringify(toWebhookPayload(event));
}
