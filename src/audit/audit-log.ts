import type { AuditEventType } from "../lib/domain.js";
import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import type { AuditEvent, AuditRepo } from "../store/ports.js";

/** Who did something, as far as the request tells. */
export type Actor = { actor: string; ip: string | null; userAgent: string | null };

export const SYSTEM_ACTOR: Actor = { actor: "system", ip: null, userAgent: null };

export type AuditLogDeps = { audit: AuditRepo; clock: Clock };

/**
 * The owner's audit trail. Details hold non-secret facts only (provider, label, hint, result);
 * callers never pass a key or a provider response body.
 */
export function createAuditLog({ audit, clock }: AuditLogDeps) {
  async function record(
    owner: string,
    type: AuditEventType,
    actor: Actor,
    fields: { keyId?: string | null; detail?: Record<string, unknown> } = {},
  ): Promise<AuditEvent> {
    const now = clock.now();
    const event: AuditEvent = {
      id: newId("evt", now.getTime()),
      owner,
      type,
      keyId: fields.keyId ?? null,
      actor: actor.actor,
      ip: actor.ip,
      userAgent: actor.userAgent === null ? null : actor.userAgent.slice(0, 256),
      detail: fields.detail ?? {},
      createdAt: now.toISOString(),
    };
    await audit.insert(event);
    return event;
  }

  function list(owner: string, options: { before?: string; limit: number }): Promise<AuditEvent[]> {
    return audit.list(owner, options);
  }

  return { record, list };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
