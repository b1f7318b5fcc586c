import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpServer } from "../../src/api/http-server.js";
import { openStore } from "../../src/app.js";
import { createNotificationServices, type NotificationServices } from "../../src/app-notifications.js";
import { createAuditLog } from "../../src/audit/audit-log.js";
import { createProxyTrust } from "../../src/auth/client-address.js";
import { loadConfig } from "../../src/config/load-config.js";
import { createEnvelope } from "../../src/crypto/envelope.js";
import { createMasterKeyring } from "../../src/crypto/master-keys.js";
import { systemClock } from "../../src/lib/clock.js";
import { createLogger } from "../../src/lib/logger.js";
import { assertWebhookUrl } from "../../src/notifications/webhook-url-policy.js";
import type { Store } from "../../src/store/ports.js";
import { createDataKeys } from "../../src/vault/data-keys.js";
import { createKeyHealth } from "../../src/vault/key-health.js";

/**
 * A webhook URL an owner tries to save, judged as a production Keyport judges it: the check the
 * limits API calls (`validateWebhookUrl`), and its error as the management API renders it.
 */
describe("saving a webhook URL in production", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "keyport-webhook-url-"));
  let store: Store;
  let services: NotificationServices;
  let http: FastifyInstance;

  beforeAll(async () => {
    const config = loadConfig({
      NODE_ENV: "production",
      KEYPORT_DATA_DIR: dataDir,
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: randomBytes(48).toString("base64url"),
    });
    store = await openStore(config);
    const envelope = createEnvelope(createMasterKeyring({ current: config.encryption.current.reveal(), previous: [] }));
    const auditLog = createAuditLog({ audit: store.audit, clock: systemClock });
    const keyHealth = createKeyHealth({ keys: store.keys, auditLog, clock: systemClock });
    const dataKeys = createDataKeys({ dataKeys: store.dataKeys, keys: store.keys, keyHealth, envelope, clock: systemClock });
    const logger = createLogger({ level: "silent" });
    services = await createNotificationServices(config, {
      store,
      dataKeys,
      envelope,
      clock: systemClock,
      logger,
      settings: { find: async () => ({ webhookUrl: null, notifyEmail: null }) },
      version: "test",
    });
    http = await createHttpServer({ preRouter: {}, logger, bodyLimitBytes: 65_536, trustProxy: createProxyTrust(config.trustProxy), version: "test" });
    http.put("/probe", async (request) => ({ url: (await assertWebhookUrl((request.body as { webhookUrl: string }).webhookUrl, services.webhookUrlPolicy)).href }));
    await http.ready();
  });
  afterAll(async () => {
    await http?.close();
    await services?.close();
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.each([
    ["https://127.0.0.1/hook", "webhookUrl must point to a public address: 127.0.0.1 is a loopback address."],
    ["https://10.0.0.1/hook", "webhookUrl must point to a public address: 10.0.0.1 is a private network address."],
    ["https://169.254.169.254/latest/meta-data/", "webhookUrl must point to a public address: 169.254.169.254 is a cloud metadata address."],
    ["https://localhost/hook", /^webhookUrl must point to a public address: localhost resolves to (127\.0\.0\.1|::1), a loopback address\.$/],
    ["http://hooks.example.com/keyport", "webhookUrl must use https:// (plain http:// is refused in production)."],
  ])("refuses %s with a message saying why", async (url, message) => {
    const check = await services.validateWebhookUrl(url);
    expect(check.ok).toBe(false);
    expect(check.ok ? "" : check.message).toMatch(typeof message === "string" ? new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`) : message);

    const response = await http.inject({ method: "PUT", url: "/probe", payload: { webhookUrl: url } });
    expect(response.statusCode, response.body).toBe(400);
    const body = response.json<{ error: { type: string; code: string; message: string } }>();
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_webhook_url" });
    expect(body.error.message).toBe(check.ok ? "" : check.message);
  });

  it("accepts a public https URL as written", async () => {
    // An IP literal, so the test needs no DNS: 93.184.215.14 is a public address.
    expect(await services.validateWebhookUrl("https://93.184.215.14/hooks/keyport?team=7")).toEqual({ ok: true, url: "https://93.184.215.14/hooks/keyport?team=7" });
  });
});
