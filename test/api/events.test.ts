import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "../gateway/gateway-clients.js";
import { type Dialect, startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";
import { describePostgres } from "../support/postgres.js";
import { startWebhookReceiver, verifyWebhookSignature, type WebhookReceiver } from "../support/webhook-receiver.js";

const OPERATOR_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

/**
 * `GET /api/v1/events` and `POST /api/v1/limits/webhook-secret` over real HTTP, on both dialects:
 * key changes become events, each with the state of its deliveries, and the operator's webhook
 * receives them signed.
 */
function eventsSuite(dialect: Dialect) {
  let keyport: TestKeyport;
  let operator: WebhookReceiver;
  let userCount = 0;

  beforeAll(async () => {
    operator = await startWebhookReceiver();
    keyport = await startKeyport({
      dialect,
      env: {
        KEYPORT_WEBHOOK_URL: `${operator.url}/operator`,
        KEYPORT_WEBHOOK_SECRET: OPERATOR_SECRET,
        KEYPORT_NOTIFICATION_POLL_MS: "20",
        KEYPORT_WEBHOOK_RETRY_SCHEDULE: "100ms,100ms",
      },
    });
  });
  afterAll(async () => {
    await keyport?.close();
    await operator?.close();
  });

  async function newUser(): Promise<{ token: string; owner: string }> {
    userCount += 1;
    const sub = `events-${userCount}-${Date.now()}`;
    return { token: await keyport.token(sub, { tier: "premium" }), owner: `user:${sub}` };
  }

  async function createKey(token: string): Promise<{ id: string; apiKey: string }> {
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const response = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider: "openai", apiKey } });
    expect(response.status, response.text).toBe(201);
    return { id: response.body.id, apiKey };
  }

  /** The owner's events once no delivery of theirs is pending any more. */
  async function settledEvents(token: string, count: number) {
    let body: { events: { deliveries: { state: string }[] }[] } = { events: [] };
    await waitUntil(async () => {
      const response = await keyport.request("GET", "/api/v1/events", { token });
      body = response.body;
      return body.events.length === count && body.events.every((event) => event.deliveries.every((delivery) => delivery.state !== "pending"));
    }, `${count} settled events`);
    return body;
  }

  it("lists the owner's key events newest first, each with its webhook and email deliveries", async () => {
    const { token, owner } = await newUser();
    const key = await createKey(token);
    keyport.mock.setKey(key.apiKey, "invalid");
    const tested = await keyport.request("POST", `/api/v1/api-keys/${key.id}/test`, { token });
    expect(tested.body.result, tested.text).toBe("invalid");

    // key.created, key.activated, key.invalidated; key.tested is audit-only.
    const body = await settledEvents(token, 3);
    // The create writes key.created and key.activated in one transaction, in the same millisecond:
    // their ids sort in no fixed order, so they are compared by type.
    const createEvents = body.events.slice(1) as unknown as { type: string }[];
    createEvents.sort((a, b) => a.type.localeCompare(b.type));
    body.events.splice(1, createEvents.length, ...(createEvents as unknown as typeof body.events));
    expect(body).toMatchObject({
      nextCursor: null,
      events: [
        {
          type: "key.invalidated",
          keyId: key.id,
          actor: owner.slice("user:".length),
          detail: { provider: "openai" },
          deliveries: [
            { target: "email", state: "skipped", attempts: 0, error: "No notification email is set.", deliveredAt: null, nextAttemptAt: null },
            { target: "webhook", state: "skipped", attempts: 0, error: "No webhook URL is set." },
          ],
        },
        { type: "key.activated", keyId: key.id, deliveries: [{ target: "webhook", state: "skipped" }] },
        { type: "key.created", keyId: key.id, deliveries: [{ target: "webhook", state: "skipped" }] },
      ],
    });
    expect(body.events.map((event) => (event as unknown as { id: string }).id).every((id) => /^evt_[0-9a-z]{26}$/.test(id))).toBe(true);
    // The operator's webhook is the platform's business: not shown to the owner.
    expect(JSON.stringify(body)).not.toContain("operator");
    expect(JSON.stringify(body)).not.toContain(key.apiKey);

    // The operator got each event once, signed with the operator's secret.
    const ids = body.events.map((event) => (event as unknown as { id: string }).id);
    await waitUntil(() => ids.every((id) => operator.accepted().some((request) => request.headers["webhook-id"] === id)), "operator webhooks");
    for (const id of ids) {
      const received = operator.accepted().filter((request) => request.headers["webhook-id"] === id);
      expect(received).toHaveLength(1);
      const [request] = received;
      expect(request?.path).toBe("/operator");
      expect(verifyWebhookSignature(OPERATOR_SECRET, request?.headers ?? {}, request?.body ?? "")).toBe(true);
      expect(JSON.parse(request?.body ?? "{}")).toMatchObject({ data: { id, owner } });
      expect(request?.body).not.toContain(key.apiKey);
    }
  });

  it("pages with nextCursor and refuses a cursor it did not hand out", async () => {
    const { token } = await newUser();
    for (let index = 0; index < 3; index += 1) await createKey(token);
    // Each create after the first leaves the first key active: 3 created + 1 activated.
    const first = await keyport.request("GET", "/api/v1/events?limit=3", { token });
    expect(first.status, first.text).toBe(200);
    expect(first.body.events).toHaveLength(3);
    expect(first.body.nextCursor).toBe(first.body.events[2].id);
    const second = await keyport.request("GET", `/api/v1/events?limit=3&cursor=${first.body.nextCursor}`, { token });
    expect(second.body.events.map((event: { type: string }) => event.type)).toEqual(["key.created"]);
    expect(second.body.nextCursor).toBeNull();

    for (const cursor of ["not-a-cursor", "evt_short", `key_${"0".repeat(26)}`, "evt_0123456789abcdefghjkmnpqrsu", "", `evt_${"0".repeat(200)}`]) {
      const refused = await keyport.request("GET", `/api/v1/events?cursor=${encodeURIComponent(cursor)}`, { token });
      expect(refused.status, cursor).toBe(400);
      expect(refused.body.error).toMatchObject({ code: "invalid_cursor", type: "invalid_request_error" });
      expect(refused.body.error.message).toContain("nextCursor");
    }
    for (const limit of ["0", "101", "abc"]) {
      const refused = await keyport.request("GET", `/api/v1/events?limit=${limit}`, { token });
      expect(refused.status, limit).toBe(400);
    }
  });

  it("shows one owner nothing of another's events, and needs a token", async () => {
    const alice = await newUser();
    const bob = await newUser();
    await createKey(alice.token);
    const forBob = await keyport.request("GET", "/api/v1/events", { token: bob.token });
    expect(forBob.body).toEqual({ events: [], nextCursor: null });
    expect((await keyport.request("GET", "/api/v1/events")).status).toBe(401);
    expect((await keyport.request("POST", "/api/v1/limits/webhook-secret")).status).toBe(401);
  });

  it("rotates the owner's webhook secret to a new whsec_ secret each time", async () => {
    const { token } = await newUser();
    const first = await keyport.request("POST", "/api/v1/limits/webhook-secret", { token });
    expect(first.status, first.text).toBe(200);
    expect(first.body.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const second = await keyport.request("POST", "/api/v1/limits/webhook-secret", { token });
    expect(second.body.webhookSecret).toMatch(/^whsec_/);
    expect(second.body.webhookSecret).not.toBe(first.body.webhookSecret);
    // The secret is shown to its owner, never logged.
    expect(keyport.logs.join("\n")).not.toContain(first.body.webhookSecret.slice(6, 30));
    expect(keyport.logs.join("\n")).not.toContain(second.body.webhookSecret.slice(6, 30));
  });

  it("describes the routes in the OpenAPI document with operation ids and named schemas", async () => {
    const document = (await keyport.request("GET", "/openapi.json")).body;
    expect(document.paths["/api/v1/events"].get.operationId).toBe("listEvents");
    expect(document.paths["/api/v1/limits/webhook-secret"].post.operationId).toBe("rotateWebhookSecret");
    expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(["NotificationEvent", "NotificationDelivery", "NotificationEventPage", "WebhookSecret"]));
    expect(JSON.stringify(document.paths["/api/v1/events"].get.responses["200"])).toContain("#/components/schemas/NotificationEventPage");
  });
}

describe("events API (sqlite)", () => eventsSuite("sqlite"));
await describePostgres("events API (postgres)", () => eventsSuite("postgres"));
