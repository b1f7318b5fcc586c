import type { AuditEventType } from "../lib/domain.js";
import type { Clock } from "../lib/clock.js";
import { newId } from "../lib/ids.js";
import type { AuditEvent, AuditRepo } from "../store/ports.js";

/** Who did something, as far as the request tells. */
export type Actor = { actor: string; ip: string | null; userAgent: string | null };

export const SYSTEM_ACTOR: Actor = { actor: "system", ip: null, userAgent: null };

export type AuditLogDeps = { audit: AuditRepo; clock: Clock };

export type AuditFields = { keyId?: string | null; detail?: Record<string, unknown> };

/**
 * The owner's audit trail. Details hold non-secret facts only (provider, label, hint, result);
 * callers never pass a key or a provider response body. An event about a change to a key is
 * built with `event` and handed to the key repository's write, which stores it in the change's
 * own transaction; `record` stores an event on its own.
 */
export function createAuditLog({ audit, clock }: AuditLogDeps) {
  /** An event stamped now, not yet stored. */
  function event(owner: string, type: AuditEventType, actor: Actor, fields: AuditFields = {}): AuditEvent {
    const now = clock.now();
    return {
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
  }

  async function record(owner: string, type: AuditEventType, actor: Actor, fields: AuditFields = {}): Promise<AuditEvent> {
    const built = event(owner, type, actor, fields);
    await audit.insert(built);
    return built;
  }

  function list(owner: string, options: { before?: string; limit: number }): Promise<AuditEvent[]> {
    return audit.list(owner, options);
  }

  return { event, record, list };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
