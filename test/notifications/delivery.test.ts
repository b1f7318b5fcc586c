import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/app.js";
import { createNotificationServices, type NotificationServices } from "../../src/app-notifications.js";
import { type AuditLog, createAuditLog, SYSTEM_ACTOR } from "../../src/audit/audit-log.js";
import { loadConfig } from "../../src/config/load-config.js";
import { createEnvelope } from "../../src/crypto/envelope.js";
import { createMasterKeyring } from "../../src/crypto/master-keys.js";
import { systemClock } from "../../src/lib/clock.js";
import type { AuditEventType } from "../../src/lib/domain.js";
import { createLogger } from "../../src/lib/logger.js";
import type { OwnerNotificationSettings } from "../../src/notifications/deliver-notification.js";
import type { NotificationDelivery, Store } from "../../src/store/ports.js";
import { createDataKeys } from "../../src/vault/data-keys.js";
import { createKeyHealth } from "../../src/vault/key-health.js";
import { waitUntil } from "../gateway/gateway-clients.js";
import type { Dialect } from "../support/harness.js";
import { createTestSchemaName, describePostgres, dropTestSchema, postgresTestUrl } from "../support/postgres.js";
import { type SmtpReceiver, startSmtpReceiver } from "../support/smtp-receiver.js";
import { startWebhookReceiver, verifyWebhookSignature, type WebhookReceiver } from "../support/webhook-receiver.js";

/**
 * The delivery side of the outbox as Keyport assembles it (`createNotificationServices`), on a
 * real database, against a real HTTP receiver and a real SMTP server. Owners' settings come from
 * an in-memory source: the port the limits resource fills in production.
 */
function deliverySuite(dialect: Dialect) {
  let receiver: WebhookReceiver;
  let smtp: SmtpReceiver;
  const running: { services: NotificationServices; store: Store; cleanup: () => Promise<void> }[] = [];
  const settings = new Map<string, OwnerNotificationSettings>();
  let ownerCount = 0;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    smtp = await startSmtpReceiver();
  });
  afterEach(async () => {
    for (const instance of running.splice(0)) {
      await instance.services.close();
      await instance.cleanup();
    }
    receiver.requests.length = 0;
    receiver.failNext(0);
    smtp.messages.length = 0;
    smtp.refuseNext(0, 451);
  });
  afterAll(async () => {
    await receiver?.close();
    await smtp?.close();
  });

  /** Keyport's notification services on a fresh database; `logs` collects every log line. */
  async function start(env: Record<string, string> = {}) {
    const dataDir = mkdtempSync(path.join(tmpdir(), "keyport-delivery-"));
    const schema = dialect === "postgres" ? createTestSchemaName() : undefined;
    const postgresUrl = postgresTestUrl();
    const config = loadConfig({
      NODE_ENV: "test",
      KEYPORT_DATA_DIR: dataDir,
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
      KEYPORT_NOTIFICATION_POLL_MS: "20",
      KEYPORT_WEBHOOK_RETRY_SCHEDULE: "50ms,50ms,50ms,50ms",
      KEYPORT_WEBHOOK_ALLOW_PRIVATE: "true",
      KEYPORT_WEBHOOK_TIMEOUT_MS: "2000",
      SMTP_URL: smtp.url,
      SMTP_FROM: "Keyport <alerts@keyport.test>",
      ...(dialect === "postgres" && postgresUrl !== undefined ? { DATABASE_URL: postgresUrl } : {}),
      ...env,
    });
    const store = await openStore(config, schema === undefined ? {} : { postgresSchema: schema });
    const envelope = createEnvelope(createMasterKeyring({ current: config.encryption.current.reveal(), previous: [] }));
    const auditLog = createAuditLog({ audit: store.audit, clock: systemClock });
    const keyHealth = createKeyHealth({ keys: store.keys, auditLog, clock: systemClock });
    const dataKeys = createDataKeys({ dataKeys: store.dataKeys, keys: store.keys, keyHealth, envelope, clock: systemClock });
    const logs: string[] = [];
    const logger = createLogger({
      level: "debug",
      destination: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          logs.push(chunk.toString("utf8"));
          callback();
        },
      }),
    });
    const services = await createNotificationServices(config, {
      store,
      dataKeys,
      envelope,
      clock: systemClock,
      logger,
      settings: { find: async (owner) => settings.get(owner) ?? { webhookUrl: null, notifyEmail: null } },
      version: "test",
    });
    running.push({
      services,
      store,
      cleanup: async () => {
        await store.close();
        if (schema !== undefined && postgresUrl !== undefined) await dropTestSchema(postgresUrl, schema);
        rmSync(dataDir, { recursive: true, force: true });
      },
    });
    return { services, store, auditLog, logs };
  }

  /** An owner with a webhook (at the receiver) and a notification email. */
  function newOwner(overrides: Partial<OwnerNotificationSettings> = {}): string {
    ownerCount += 1;
    const owner = `user:delivery-${ownerCount}-${Date.now()}`;
    settings.set(owner, { webhookUrl: `${receiver.url}/hooks/${ownerCount}`, notifyEmail: `owner${ownerCount}@example.test`, ...overrides });
    return owner;
  }

  async function record(auditLog: AuditLog, owner: string, type: AuditEventType, detail: Record<string, unknown> = {}) {
    return auditLog.record(owner, type, SYSTEM_ACTOR, { detail });
  }

  async function deliveriesOf(store: Store, owner: string, eventId: string): Promise<NotificationDelivery[]> {
    const listed = await store.notifications.listEvents(owner, { limit: 100 });
    return listed.find(({ event }) => event.id === eventId)?.deliveries ?? [];
  }

  async function waitForFinal(store: Store, owner: string, eventId: string): Promise<NotificationDelivery[]> {
    let deliveries: NotificationDelivery[] = [];
    await waitUntil(async () => {
      deliveries = await deliveriesOf(store, owner, eventId);
      return deliveries.length > 0 && deliveries.every((delivery) => delivery.state !== "pending");
    }, `every delivery of ${eventId} final`);
    return deliveries;
  }

  it("delivers one event as one signed webhook and one email", async () => {
    const { services, store, auditLog, logs } = await start();
    services.worker.start();
    const owner = newOwner();
    const secret = (await services.webhookSecrets.reveal(owner)).reveal();
    const event = await record(auditLog, owner, "budget.threshold_reached", { thresholdUsd: 50, spentUsd: 50.02 });

    const deliveries = await waitForFinal(store, owner, event.id);
    expect(deliveries.map((delivery) => [delivery.target, delivery.state, delivery.attempts])).toEqual([
      ["email", "delivered", 1],
      ["operator_webhook", "skipped", 0],
      ["webhook", "delivered", 1],
    ]);

    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request?.headers["webhook-id"]).toBe(event.id);
    expect(Number(request?.headers["webhook-timestamp"])).toBeCloseTo(Date.now() / 1000, -2);
    expect(verifyWebhookSignature(secret, request?.headers ?? {}, request?.body ?? "")).toBe(true);
    expect(JSON.parse(request?.body ?? "")).toEqual({
      type: "budget.threshold_reached",
      timestamp: event.createdAt,
      data: { id: event.id, owner, keyId: null, actor: "system", detail: { thresholdUsd: 50, spentUsd: 50.02 } },
    });

    expect(smtp.messages).toHaveLength(1);
    const [mail] = smtp.messages;
    expect(mail?.from).toBe("alerts@keyport.test");
    expect(mail?.to).toEqual([settings.get(owner)?.notifyEmail]);
    expect(mail?.raw).toContain("Subject: [Keyport] Your LLM spending reached your alert threshold");
    expect(mail?.raw).toContain(`Message-ID: <${event.id}@keyport>`);
    expect(mail?.raw).toContain("thresholdUsd: 50");
    expect(logs.join("")).not.toContain(secret.slice(6));
  });

  it("retries a webhook that fails three times and delivers it exactly once", async () => {
    const { services, store, auditLog } = await start();
    services.worker.start();
    const owner = newOwner({ notifyEmail: null });
    const secret = (await services.webhookSecrets.reveal(owner)).reveal();
    receiver.failNext(3, 503);
    const event = await record(auditLog, owner, "key.deleted", { provider: "openai", keyHint: "****...abc1" });

    const deliveries = await waitForFinal(store, owner, event.id);
    expect(deliveries.find((delivery) => delivery.target === "webhook")).toMatchObject({ state: "delivered", attempts: 4, lastError: null });
    expect(receiver.requests.map((request) => request.answeredStatus)).toEqual([503, 503, 503, 204]);
    expect(receiver.accepted()).toHaveLength(1);
    // Every attempt is the same event (one webhook-id) and is signed afresh.
    for (const request of receiver.requests) {
      expect(request.headers["webhook-id"]).toBe(event.id);
      expect(verifyWebhookSignature(secret, request.headers, request.body)).toBe(true);
    }
    // Nothing more arrives afterwards.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.requests).toHaveLength(4);
  });

  it("gives up once the retry schedule is used up, and says why", async () => {
    const { services, store, auditLog } = await start({ KEYPORT_WEBHOOK_RETRY_SCHEDULE: "30ms,30ms" });
    services.worker.start();
    const owner = newOwner({ notifyEmail: null });
    receiver.failNext(100, 500);
    const event = await record(auditLog, owner, "key.rotated");
    const deliveries = await waitForFinal(store, owner, event.id);
    expect(deliveries.find((delivery) => delivery.target === "webhook")).toMatchObject({ state: "failed", attempts: 3, lastError: "HTTP 500", nextAttemptAt: null });
    expect(receiver.requests).toHaveLength(3);
  });

  it("retries an email the server refuses for now, and gives up at once on a permanent refusal", async () => {
    const { services, store, auditLog } = await start();
    services.worker.start();
    const owner = newOwner({ webhookUrl: null });
    smtp.refuseNext(2, 451);
    const later = await record(auditLog, owner, "key.no_credits", { provider: "anthropic" });
    const deliveries = await waitForFinal(store, owner, later.id);
    expect(deliveries.find((delivery) => delivery.target === "email")).toMatchObject({ state: "delivered", attempts: 3 });
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]?.raw).toContain("Subject: [Keyport] Your Anthropic API key has run out of credits");

    smtp.refuseNext(1, 550);
    const refused = await record(auditLog, owner, "key.invalidated", { provider: "openai" });
    const refusedDeliveries = await waitForFinal(store, owner, refused.id);
    expect(refusedDeliveries.find((delivery) => delivery.target === "email")).toMatchObject({ state: "failed", attempts: 1, lastError: "SMTP 550" });
    expect(smtp.messages).toHaveLength(1);
  });

  it("skips targets the owner has not set up, and emails only key-health and budget events", async () => {
    const { services, store, auditLog } = await start();
    services.worker.start();
    const owner = newOwner({ webhookUrl: null, notifyEmail: null });
    const event = await record(auditLog, owner, "budget.exceeded");
    expect((await waitForFinal(store, owner, event.id)).map((delivery) => [delivery.target, delivery.state, delivery.lastError])).toEqual([
      ["email", "skipped", "No notification email is set."],
      ["operator_webhook", "skipped", "No operator webhook is configured."],
      ["webhook", "skipped", "No webhook URL is set."],
    ]);
    const withEmail = newOwner({ webhookUrl: null });
    const created = await record(auditLog, withEmail, "key.created");
    expect((await waitForFinal(store, withEmail, created.id)).map((delivery) => delivery.target)).toEqual(["operator_webhook", "webhook"]);
    await record(auditLog, withEmail, "key.tested");
    expect(await store.notifications.listEvents(withEmail, { limit: 10 })).toHaveLength(1);
    expect(smtp.messages).toHaveLength(0);
  });

  it("refuses at delivery a webhook URL whose host resolves to a loopback address, sending nothing", async () => {
    const { services, store, auditLog } = await start({ KEYPORT_WEBHOOK_ALLOW_PRIVATE: "false", KEYPORT_WEBHOOK_RETRY_SCHEDULE: "30ms" });
    services.worker.start();
    const port = new URL(receiver.url).port;
    const byName = newOwner({ webhookUrl: `http://localhost:${port}/hook`, notifyEmail: null });
    const byAddress = newOwner({ webhookUrl: `http://127.0.0.1:${port}/hook`, notifyEmail: null });
    const first = await record(auditLog, byName, "key.created");
    const second = await record(auditLog, byAddress, "key.created");
    const named = (await waitForFinal(store, byName, first.id)).find((delivery) => delivery.target === "webhook");
    expect(named).toMatchObject({ state: "failed", attempts: 2 });
    expect(named?.lastError).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    const literal = (await waitForFinal(store, byAddress, second.id)).find((delivery) => delivery.target === "webhook");
    expect(literal).toMatchObject({ state: "failed", lastError: "refused: the URL must point to a public address: 127.0.0.1 is a loopback address" });
    expect(receiver.requests).toHaveLength(0);
  });

  it("signs with the old and the new secret for a day after a rotation", async () => {
    const { services, store, auditLog } = await start();
    services.worker.start();
    const owner = newOwner({ notifyEmail: null });
    const old = (await services.webhookSecrets.reveal(owner)).reveal();
    const next = (await services.webhookSecrets.rotate(owner)).reveal();
    expect(next).not.toBe(old);
    expect((await services.webhookSecrets.reveal(owner)).reveal()).toBe(next);
    const event = await record(auditLog, owner, "key.activated");
    await waitForFinal(store, owner, event.id);
    const [request] = receiver.requests;
    expect(String(request?.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    expect(verifyWebhookSignature(next, request?.headers ?? {}, request?.body ?? "")).toBe(true);
    expect(verifyWebhookSignature(old, request?.headers ?? {}, request?.body ?? "")).toBe(true);
  });

  it("keeps the webhook secret sealed at rest", async () => {
    const { services, store } = await start();
    const owner = newOwner();
    const secret = (await services.webhookSecrets.reveal(owner)).reveal();
    const row = await store.webhookSecrets.find(owner);
    expect(row?.sealed).toBeDefined();
    expect(row?.sealed).not.toContain(secret.slice(6, 20));
    expect(Buffer.from(row?.sealed ?? "", "base64url").toString("latin1")).not.toContain(secret.slice(6, 20));
  });
}

describe("notification delivery (sqlite)", () => deliverySuite("sqlite"));
await describePostgres("notification delivery (postgres)", () => deliverySuite("postgres"));
