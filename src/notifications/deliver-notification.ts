import type { Clock } from "../lib/clock.js";
import { assertNever } from "../lib/errors.js";
import type { Redacted } from "../lib/redacted.js";
import type { AuditEvent, ClaimedDelivery, DeliveryOutcome } from "../store/ports.js";
import type { EmailSender } from "./email-sender.js";
import { emailForEvent } from "./email-message.js";
import { webhookBody } from "./event-payload.js";
import type { WebhookSecrets } from "./webhook-secrets.js";
import type { WebhookSender } from "./webhook-sender.js";

/** Where an owner wants notifications; null fields are not set. */
export type OwnerNotificationSettings = { webhookUrl: string | null; notifyEmail: string | null };

/** Reads an owner's notification settings (the owner's limits). */
export type NotificationSettingsSource = { find(owner: string): Promise<OwnerNotificationSettings> };

export type DeliverNotificationDeps = {
  settings: NotificationSettingsSource;
  secrets: Pick<WebhookSecrets, "signingSecrets">;
  ownerWebhooks: WebhookSender;
  operatorWebhook: { sender: WebhookSender; url: string; secret: Redacted<string> } | undefined;
  email: EmailSender | undefined;
  /** Delays before the 2nd, 3rd, … attempt, in milliseconds. */
  retryScheduleMs: readonly number[];
  clock: Clock;
  /** [0, 1); spreads retries by up to a tenth of their delay. Default `Math.random`. */
  random?: () => number;
};

/** One attempt, before it is turned into a stored outcome. */
export type AttemptResult = { kind: "delivered" } | { kind: "skipped"; reason: string } | { kind: "failed"; error: string; permanent: boolean };

/**
 * The stored outcome of an attempt: a failure is retried after the schedule's next delay (plus
 * up to 10 % jitter, so deliveries failed by one outage do not all return at once) until the
 * schedule runs out or the failure is permanent.
 */
export function toOutcome(result: AttemptResult, attemptsBefore: number, now: Date, retryScheduleMs: readonly number[], random: () => number): DeliveryOutcome {
  const at = now.toISOString();
  switch (result.kind) {
    case "delivered":
      return { state: "delivered", at };
    case "skipped":
      return { state: "skipped", at, reason: result.reason };
    case "failed": {
      const delayMs = result.permanent ? undefined : retryScheduleMs[attemptsBefore];
      if (delayMs === undefined) return { state: "failed", at, error: result.error };
      const nextAttemptAt = new Date(now.getTime() + Math.round(delayMs * (1 + random() * 0.1))).toISOString();
      return { state: "pending", at, nextAttemptAt, error: result.error };
    }
    default:
      return assertNever(result);
  }
}

/** Makes one attempt at a claimed delivery, to whichever target it names. */
export function createDeliverNotification(deps: DeliverNotificationDeps) {
  const random = deps.random ?? Math.random;

  async function toWebhook(event: AuditEvent, url: string, sender: WebhookSender, secrets: readonly Redacted<string>[]): Promise<AttemptResult> {
    const result = await sender.send({
      url,
      id: event.id,
      body: webhookBody(event),
      secrets,
      timestampSeconds: Math.floor(deps.clock.now().getTime() / 1000),
    });
    return result.ok ? { kind: "delivered" } : { kind: "failed", error: result.error, permanent: false };
  }

  async function attempt({ delivery, event }: ClaimedDelivery): Promise<AttemptResult> {
    switch (delivery.target) {
      case "webhook": {
        const { webhookUrl } = await deps.settings.find(event.owner);
        if (webhookUrl === null) return { kind: "skipped", reason: "No webhook URL is set." };
        return toWebhook(event, webhookUrl, deps.ownerWebhooks, await deps.secrets.signingSecrets(event.owner));
      }
      case "operator_webhook": {
        const operator = deps.operatorWebhook;
        if (operator === undefined) return { kind: "skipped", reason: "No operator webhook is configured." };
        return toWebhook(event, operator.url, operator.sender, [operator.secret]);
      }
      case "email": {
        const { notifyEmail } = await deps.settings.find(event.owner);
        if (notifyEmail === null) return { kind: "skipped", reason: "No notification email is set." };
        if (deps.email === undefined) return { kind: "skipped", reason: "Email is not set up on this server." };
        const result = await deps.email.send(emailForEvent(event, notifyEmail));
        return result.ok ? { kind: "delivered" } : { kind: "failed", error: result.error, permanent: result.permanent };
      }
      default:
        return assertNever(delivery.target);
    }
  }

  /** The attempt's outcome, ready to store. */
  return async function deliver(claimed: ClaimedDelivery): Promise<DeliveryOutcome> {
    const result = await attempt(claimed);
    return toOutcome(result, claimed.delivery.attempts, deps.clock.now(), deps.retryScheduleMs, random);
  };
}

export type DeliverNotification = ReturnType<typeof createDeliverNotification>;
