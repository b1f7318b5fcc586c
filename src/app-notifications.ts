import type { Logger } from "pino";
import type { Config } from "./config/config-schema.js";
import type { Envelope } from "./crypto/envelope.js";
import type { Clock } from "./lib/clock.js";
import { createDeliverNotification, type NotificationSettingsSource } from "./notifications/deliver-notification.js";
import { createDeliveryWorker, type DeliveryWorker } from "./notifications/delivery-worker.js";
import type { EmailSender } from "./notifications/email-sender.js";
import { createEventList, type ListEvents } from "./notifications/event-list.js";
import { createWebhookSecrets, type WebhookSecrets } from "./notifications/webhook-secrets.js";
import { createWebhookSender } from "./notifications/webhook-sender.js";
import { checkWebhookUrl, type WebhookUrlPolicy } from "./notifications/webhook-url-policy.js";
import type { Store } from "./store/ports.js";
import type { DataKeys } from "./vault/data-keys.js";

/** A full day: the least a retry schedule should cover (a receiver down overnight still gets its events). */
const DAY_MS = 24 * 3_600_000;
const BATCH_SIZE = 20;

export type NotificationServices = {
  worker: DeliveryWorker;
  listEvents: ListEvents;
  webhookSecrets: WebhookSecrets;
  /** What `PUT /api/v1/limits` checks a `webhookUrl` against (`assertWebhookUrl`). */
  webhookUrlPolicy: WebhookUrlPolicy;
  /**
   * `checkWebhookUrl` under this server's policy, as the limits service takes it: the normalised
   * URL to store, or the message of a 400 naming the field.
   */
  validateWebhookUrl(url: string): Promise<{ ok: true; url: string } | { ok: false; message: string }>;
  /** Stops the worker (attempts in progress finish), then closes the senders. */
  close(): Promise<void>;
};

/**
 * Builds the notification outbox's delivery side: the senders, the worker every instance runs,
 * the owner's event list and webhook secrets. nodemailer is loaded only when `SMTP_URL` is set.
 */
export async function createNotificationServices(
  config: Config,
  deps: { store: Store; dataKeys: DataKeys; envelope: Envelope; clock: Clock; logger: Logger; settings: NotificationSettingsSource; version: string },
): Promise<NotificationServices> {
  const settings = config.notifications;
  const userAgent = `Keyport-Webhooks/${deps.version}`;
  const timeoutMs = settings.webhookTimeoutMs;
  const requireHttps = config.nodeEnv === "production";
  const scheduleMs = settings.retryScheduleMs.reduce((sum, delay) => sum + delay, 0);
  if (scheduleMs < DAY_MS) {
    deps.logger.warn({ retryScheduleHours: Math.round(scheduleMs / 360_000) / 10 }, "KEYPORT_WEBHOOK_RETRY_SCHEDULE covers less than 24 hours");
  }

  const ownerWebhooks = createWebhookSender({ timeoutMs, requireHttps, userAgent, addresses: settings.allowPrivateAddresses ? "any" : "public" });
  const operator = settings.operatorWebhook;
  // The operator's own URL is configuration, like the provider base URLs: no address rules.
  const operatorSender = operator === undefined ? undefined : createWebhookSender({ timeoutMs, requireHttps: false, userAgent, addresses: "any" });
  let email: EmailSender | undefined;
  if (settings.smtp !== undefined) {
    const { createSmtpEmailSender } = await import("./notifications/smtp-email-sender.js");
    email = createSmtpEmailSender({ url: settings.smtp.url, from: settings.smtp.from, timeoutMs });
  }

  const webhookSecrets = createWebhookSecrets({ repo: deps.store.webhookSecrets, dataKeys: deps.dataKeys, envelope: deps.envelope, clock: deps.clock });
  const deliver = createDeliverNotification({
    settings: deps.settings,
    secrets: webhookSecrets,
    ownerWebhooks,
    operatorWebhook: operator === undefined || operatorSender === undefined ? undefined : { sender: operatorSender, url: operator.url, secret: operator.secret },
    email,
    retryScheduleMs: settings.retryScheduleMs,
    clock: deps.clock,
  });
  // An attempt is cut off well inside its lease, so no other instance takes over a delivery that
  // is still being attempted (SMTP's timeouts apply per phase, hence the margin).
  const attemptDeadlineMs = 2 * timeoutMs + 2_000;
  const worker = createDeliveryWorker({
    notifications: deps.store.notifications,
    deliver,
    clock: deps.clock,
    log: deps.logger,
    pollIntervalMs: settings.pollIntervalMs,
    leaseMs: attemptDeadlineMs + timeoutMs + 3_000,
    attemptDeadlineMs,
    batchSize: BATCH_SIZE,
    retryScheduleMs: settings.retryScheduleMs,
  });

  const webhookUrlPolicy: WebhookUrlPolicy = { requireHttps, allowPrivateAddresses: settings.allowPrivateAddresses };
  return {
    worker,
    listEvents: createEventList({ notifications: deps.store.notifications }),
    webhookSecrets,
    webhookUrlPolicy,
    async validateWebhookUrl(url) {
      const check = await checkWebhookUrl(url, webhookUrlPolicy);
      return check.ok ? { ok: true, url: check.url.href } : { ok: false, message: `${check.message}.` };
    },
    async close() {
      await worker.stop();
      await Promise.allSettled([ownerWebhooks.close(), operatorSender?.close(), email?.close()]);
    },
  };
}
