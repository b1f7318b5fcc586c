import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SYSTEM_ACTOR, createAuditLog } from "../../src/audit/audit-log.js";
import { systemClock } from "../../src/lib/clock.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { waitUntil } from "../gateway/gateway-clients.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver.js";

const EVENTS = 60;

/**
 * Two Keyport instances on one PostgreSQL schema each run a delivery worker, polling the one
 * outbox at the same time: every event reaches the webhook exactly once.
 */
await describePostgres("notification delivery with two instances on one PostgreSQL", (postgresUrl) => {
  const schema = createTestSchemaName();
  let mock: MockProvider;
  let receiver: WebhookReceiver;
  let instances: TestKeyport[] = [];

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: true });
    receiver = await startWebhookReceiver();
    const env = {
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
      KEYPORT_WEBHOOK_URL: `${receiver.url}/operator`,
      KEYPORT_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
      KEYPORT_NOTIFICATION_POLL_MS: "10",
    };
    instances = await Promise.all([1, 2].map(() => startKeyport({ dialect: "postgres", postgresSchema: schema, mock, env })));
  });
  afterAll(async () => {
    await Promise.allSettled(instances.map((instance) => instance.close()));
    await receiver?.close();
    await mock?.close();
    await dropTestSchema(postgresUrl, schema);
  });

  it("delivers each of 60 events once while both workers poll", { timeout: 60_000 }, async () => {
    const [first] = instances;
    if (first === undefined) throw new Error("no instance");
    const auditLog = createAuditLog({ audit: first.app.store.audit, clock: systemClock });
    // Written in one burst, so both workers find them due at once and compete for each.
    const events = await Promise.all(
      Array.from({ length: EVENTS }, (_, index) => auditLog.record(`user:scale-${index % 6}`, "key.deleted", SYSTEM_ACTOR, { detail: { index } })),
    );
    await waitUntil(() => receiver.accepted().length >= EVENTS, `${EVENTS} webhooks`, 30_000);
    // Anything delivered twice would arrive within a few more polls.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ids = receiver.requests.map((request) => String(request.headers["webhook-id"]));
    expect(ids).toHaveLength(EVENTS);
    expect(new Set(ids)).toEqual(new Set(events.map((event) => event.id)));

    const deliveredBy = instances.map((instance) => instance.logs.filter((line) => line.includes('"msg":"notification delivered"')).length);
    expect(deliveredBy.reduce((sum, count) => sum + count, 0)).toBe(EVENTS);
  });
});
