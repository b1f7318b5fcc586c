import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { cleanEnv, createCliRunner, createTempDirs, requestJson } from "../cli/cli-process.js";
import { waitUntil } from "../gateway/gateway-clients.js";
import { openAiKey } from "../support/keys.js";
import { startWebhookReceiver, verifyWebhookSignature, type WebhookReceiver } from "../support/webhook-receiver.js";

const OPERATOR_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

/**
 * Keyport as a real process (`keyport serve`, the build in dist/), killed with SIGKILL while
 * events wait in the outbox, then started again on the same database: every event still arrives,
 * once. The operator's webhook is the target (it needs no owner settings).
 */
describe("notification outbox across a SIGKILL", () => {
  const runner = createCliRunner();
  const directories = createTempDirs("keyport-outbox-");
  let mock: MockProvider;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    mock = await startMockProvider({ acceptUnknownKeys: true });
  });
  afterEach(async () => {
    await runner.killAll();
    await receiver?.close();
  });
  afterAll(async () => {
    await mock.close();
    directories.removeAll();
  });

  /** One deployment: its data directory and secrets survive restarts. */
  function deployment(pollMs: number) {
    const dataDir = directories.make();
    const jwtSecret = randomBytes(48).toString("base64url");
    const env = cleanEnv({
      NODE_ENV: "test",
      PORT: "0",
      KEYPORT_DATA_DIR: dataDir,
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: jwtSecret,
      OPENAI_BASE_URL: mock.openaiBaseUrl,
      KEYPORT_WEBHOOK_URL: `${receiver.url}/operator`,
      KEYPORT_WEBHOOK_SECRET: OPERATOR_SECRET,
      KEYPORT_WEBHOOK_TIMEOUT_MS: "1000",
      KEYPORT_WEBHOOK_RETRY_SCHEDULE: "200ms,200ms,200ms",
      KEYPORT_NOTIFICATION_POLL_MS: String(pollMs),
      LOG_LEVEL: "info",
    });
    return {
      async start() {
        const keyport = runner.start(["serve"], { cwd: dataDir, env });
        const [, url] = await keyport.waitFor(/Keyport is running at (http:\/\/[^\s]+)/);
        if (url === undefined) throw new Error("no address in the banner");
        return { keyport, url };
      },
      token: (sub: string) => signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub, tier: "premium" }),
    };
  }

  /** Creates a key: `key.created` and `key.activated`, written to the outbox with their audit rows. */
  async function createKey(url: string, token: string): Promise<void> {
    const created = await requestJson("POST", `${url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey: openAiKey() } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }

  async function eventIds(url: string, token: string): Promise<string[]> {
    const listed = await requestJson("GET", `${url}/api/v1/events`, { token });
    expect(listed.status).toBe(200);
    return listed.body.events.map((event: { id: string }) => event.id);
  }

  function expectDeliveredOnce(ids: readonly string[]): void {
    for (const id of ids) {
      const accepted = receiver.accepted().filter((request) => request.headers["webhook-id"] === id);
      expect(accepted, `deliveries of ${id}`).toHaveLength(1);
      expect(verifyWebhookSignature(OPERATOR_SECRET, accepted[0]?.headers ?? {}, accepted[0]?.body ?? "")).toBe(true);
    }
  }

  it("delivers events that were never attempted before the kill", { timeout: 90_000 }, async () => {
    receiver = await startWebhookReceiver();
    // The worker polls once at start, then not for a minute: the events wait in the outbox.
    const keyportDeployment = deployment(60_000);
    const first = await keyportDeployment.start();
    const token = await keyportDeployment.token("restart-user");
    await createKey(first.url, token);
    const ids = await eventIds(first.url, token);
    expect(ids).toHaveLength(2);
    await first.keyport.kill();
    expect(receiver.requests).toHaveLength(0);

    const second = await keyportDeployment.start();
    await waitUntil(() => receiver.accepted().length >= 2, "both events delivered after the restart", 30_000);
    expectDeliveredOnce(ids);
    expect(receiver.requests).toHaveLength(2);
    await second.keyport.kill();
  });

  it("delivers events whose attempt was in flight when the process was killed", { timeout: 90_000 }, async () => {
    receiver = await startWebhookReceiver();
    receiver.hang();
    const keyportDeployment = deployment(20);
    const first = await keyportDeployment.start();
    const token = await keyportDeployment.token("in-flight-user");
    await createKey(first.url, token);
    const ids = await eventIds(first.url, token);
    await waitUntil(() => receiver.requests.length >= 2, "both attempts in flight", 20_000);
    await first.keyport.kill();
    receiver.release();

    // The killed process's leases run out (a few seconds with a 1 s webhook timeout), then the
    // restarted one delivers.
    const second = await keyportDeployment.start();
    await waitUntil(() => receiver.accepted().length >= 2, "both events delivered after the restart", 45_000);
    expectDeliveredOnce(ids);
    await second.keyport.kill();
  });
});
