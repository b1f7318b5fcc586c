import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../src/config/tiers.js";
import { anthropicVia, createUsers, type GatewayKeyport, startGateway, storeKey, type TestUser } from "../gateway/gateway-support.js";
import { startWebhookReceiver, verifyWebhookSignature, type WebhookReceiver } from "../support/webhook-receiver.js";
import { chat, chatBody, eventually, expectBudgetRefusal, putLimits, worstCaseOf } from "./budget-support.js";

/** A plan with the owner's own keys and no platform allowance at all ($0 a month). */
const TIERS = {
  ...DEFAULT_TIERS,
  capped: { requestsPerMinute: 1_000, requestsPerDay: 100_000, byokAllowed: true, platformMonthlyBudgetUsd: 0 },
};

function messagesBody(user: TestUser) {
  return { model: "claude-haiku-4-5", max_tokens: 32, messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

/** Counts the HTTP requests an SDK makes (retries included) through its `fetch` option. */
function countingFetch(): { fetch: typeof fetch; count: () => number } {
  let count = 0;
  return {
    fetch: (input, init) => {
      count += 1;
      return fetch(input, init);
    },
    count: () => count,
  };
}

describe("caps: key limits, the platform allowance, the SDKs' view of a refusal", () => {
  let keyport: GatewayKeyport;
  let receiver: WebhookReceiver;
  let newUser: (tier: string) => Promise<TestUser>;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    keyport = await startGateway({
      env: {
        KEYPORT_TIERS: JSON.stringify(TIERS),
        KEYPORT_UPSTREAM_RETRIES: "0",
        KEYPORT_NOTIFICATION_POLL_MS: "20",
        KEYPORT_WEBHOOK_ALLOW_PRIVATE: "true",
      },
    });
    newUser = createUsers(keyport, "caps");
  });
  afterAll(async () => {
    await keyport?.close();
    await receiver?.close();
  });

  it("a key's limit stops that key (429 naming the key's limit) while the owner's other provider still works", async () => {
    const user = await newUser("premium");
    const openai = await storeKey(keyport, user, "openai");
    await storeKey(keyport, user, "anthropic");
    const body = chatBody(user.marker);
    const worst = worstCaseOf(body);
    // Room for exactly one call's worst case, in whole micro-USD.
    const limitUsd = Math.ceil(worst / 1000) / 1e6;
    const patched = await keyport.request("PATCH", `/api/v1/api-keys/${openai.id}`, { token: user.token, body: { monthlyLimitUsd: limitUsd } });
    expect(patched.status, patched.text).toBe(200);

    const first = await chat(keyport, user.token, body);
    expect(first.status, first.text).toBe(200);
    // The first call settled below its worst case, but a second worst case no longer fits.
    const second = await chat(keyport, user.token, body);
    expectBudgetRefusal(second, new RegExp(`This key's monthly limit would be exceeded \\(key ${openai.id}`));
    expect(keyport.mock.requests().filter((request) => JSON.stringify(request.body ?? "").includes(user.marker) && request.path === "/v1/chat/completions")).toHaveLength(1);

    const other = await anthropicVia(keyport, user.token).messages.create(messagesBody(user)).withResponse();
    expect(other.response.status).toBe(200);

    const limits = await keyport.request("GET", "/api/v1/limits", { token: user.token });
    expect(limits.status, limits.text).toBe(200);
    expect(limits.body.caps).toEqual([
      expect.objectContaining({ kind: "key_limit", keyId: openai.id, provider: "openai", limitUsd, label: expect.any(String) }),
    ]);
    const [cap] = limits.body.caps as { spentUsd: number; remainingUsd: number }[];
    expect(cap?.spentUsd).toBeGreaterThan(0);
    expect((cap?.spentUsd ?? 0) + (cap?.remainingUsd ?? 0)).toBeCloseTo(limitUsd, 9);

    // Removing the limit lets the key work again.
    const cleared = await keyport.request("PATCH", `/api/v1/api-keys/${openai.id}`, { token: user.token, body: { monthlyLimitUsd: null } });
    expect(cleared.status, cleared.text).toBe(200);
    expect((await chat(keyport, user.token, body)).status).toBe(200);
  });

  it("the plan's platform allowance stops platform calls while the owner's own key still works", async () => {
    const user = await newUser("capped");
    // An OpenAI key of the owner's own; Anthropic goes on the platform key, with an allowance of $0.
    await storeKey(keyport, user, "openai");
    const own = await chat(keyport, user.token, chatBody(user.marker));
    expect(own.status, own.text).toBe(200);
    expect(own.headers.get("x-keyport-key-source")).toBe("byok");

    const refused = await keyport.request("POST", "/anthropic/v1/messages", { token: user.token, body: messagesBody(user) });
    expect(refused.status, refused.text).toBe(429);
    expect(refused.headers.get("x-should-retry")).toBe("false");
    expect(refused.body).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    expect(refused.body.error.message).toMatch(/Your plan's platform allowance would be exceeded/);
    expect(keyport.mock.requests().filter((request) => request.path === "/v1/messages" && JSON.stringify(request.body ?? "").includes(user.marker))).toHaveLength(0);

    const limits = await keyport.request("GET", "/api/v1/limits", { token: user.token });
    expect(limits.body.caps).toEqual([{ kind: "platform_allowance", tier: "capped", limitUsd: 0, spentUsd: 0, remainingUsd: 0 }]);
  });

  it("a call that falls back from a revoked own key to the platform key is held to the plan's allowance", async () => {
    const user = await newUser("capped");
    const key = await storeKey(keyport, user, "openai");
    keyport.mock.setKey(key.apiKey, "invalid");
    const refused = await chat(keyport, user.token, chatBody(user.marker));
    expectBudgetRefusal(refused, /Your plan's platform allowance would be exceeded/);
    // The owner's key was tried (and refused by the provider); the platform key never was.
    const upstream = keyport.mock.requests().filter((request) => request.path === "/v1/chat/completions" && JSON.stringify(request.body ?? "").includes(user.marker));
    expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${key.apiKey}`]);
  });

  it("the openai SDK sees a RateLimitError with code budget_exceeded and does not retry it", async () => {
    const user = await newUser("premium");
    await storeKey(keyport, user, "openai");
    await putLimits(keyport, user.token, { monthlyBudgetUsd: 0 });
    const counter = countingFetch();
    const client = new OpenAI({ baseURL: `${keyport.url}/openai/v1`, apiKey: user.token, maxRetries: 3, fetch: counter.fetch });
    const error = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: user.marker }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ status: 429, code: "budget_exceeded", type: "insufficient_quota" });
    expect((error as Error).message).toMatch(/Your monthly budget would be exceeded/);
    expect(counter.count()).toBe(1);
    // What the provider does not bill is never refused: listing models still works at $0.
    const models = await keyport.request("GET", "/openai/v1/models", { token: user.token });
    expect(models.status, models.text).toBe(200);
  });

  it("the Anthropic SDK sees a RateLimitError and does not retry it", async () => {
    const user = await newUser("premium");
    await storeKey(keyport, user, "anthropic");
    await putLimits(keyport, user.token, { monthlyBudgetUsd: 0 });
    const counter = countingFetch();
    const client = new Anthropic({ baseURL: `${keyport.url}/anthropic`, apiKey: user.token, maxRetries: 3, fetch: counter.fetch });
    const error = await client.messages.create(messagesBody(user)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(error).toMatchObject({ status: 429 });
    expect((error as Error).message).toMatch(/Your monthly budget would be exceeded/);
    expect(counter.count()).toBe(1);
  });

  it("budget.exceeded is delivered once per cap to the webhook URL saved in the limits", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    await putLimits(keyport, user.token, { monthlyBudgetUsd: 0, webhookUrl: `${receiver.url}/hooks/${user.sub}` });
    const patched = await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, { token: user.token, body: { monthlyLimitUsd: 0 } });
    expect(patched.status, patched.text).toBe(200);
    const body = chatBody(user.marker);
    const refusals = await Promise.all(Array.from({ length: 5 }, () => chat(keyport, user.token, body)));
    for (const refusal of refusals) expectBudgetRefusal(refusal, /Your monthly budget would be exceeded/);

    const delivered = await eventually(
      // Key events of this owner may arrive here too (their deliveries read the URL when they run).
      async () => receiver.requests.filter((request) => request.path === `/hooks/${user.sub}` && request.body.includes('"budget.exceeded"')),
      (found) => found.length >= 1,
    );
    expect(delivered).toHaveLength(1);
    const [hook] = delivered;
    const secret = (await keyport.request("GET", "/api/v1/limits", { token: user.token })).body.webhookSecret as string;
    expect(verifyWebhookSignature(secret, hook?.headers ?? {}, hook?.body ?? "")).toBe(true);
    expect(JSON.parse(hook?.body ?? "{}")).toMatchObject({ type: "budget.exceeded" });
    // The owner budget refused first: the key's limit was never the cap that refused, so no event for it.
    const events = (await keyport.app.store.notifications.listEvents(user.owner, { limit: 100 })).filter(({ event }) => event.type === "budget.exceeded");
    expect(events).toHaveLength(1);
  });
});

describe("a budget set in the middle of the month", () => {
  let keyport: GatewayKeyport;
  beforeAll(async () => {
    keyport = await startGateway({ env: { KEYPORT_UPSTREAM_RETRIES: "0" } });
  });
  afterAll(async () => keyport?.close());

  it("counts what the owner already spent this month, and an alert threshold alone counts without refusing", async () => {
    const user = await createUsers(keyport, "midmonth")("premium");
    await storeKey(keyport, user, "openai");
    const body = chatBody(user.marker);
    for (let call = 0; call < 3; call += 1) expect((await chat(keyport, user.token, body)).status).toBe(200);
    // The records reach usage_daily through the batched writer.
    const records = await eventually(
      () => keyport.app.store.usage.listByOwner(user.owner, { from: "2000-01-01", to: "3000-01-01" }),
      (found) => found.length >= 3,
    );
    const spentNano = records.reduce((sum, record) => sum + (record.costNanoUsd ?? 0), 0);
    expect(spentNano).toBeGreaterThan(0);

    // A threshold alone: calls go on, and the spend so far is what the counter starts from.
    const withThreshold = await putLimits(keyport, user.token, { notifyThresholdUsd: 1_000 });
    expect(Math.round(withThreshold.body.spentUsd * 1e9)).toBe(spentNano);
    expect((await chat(keyport, user.token, body)).status).toBe(200);

    // A budget just above what is spent now (in whole micro-USD) has no room for one more worst case.
    const after = await eventually(
      () => keyport.request("GET", "/api/v1/limits", { token: user.token }),
      (response) => Math.round(response.body.spentUsd * 1e9) > spentNano,
    );
    const nowNano = Math.round(after.body.spentUsd * 1e9);
    const budgetUsd = Math.ceil(nowNano / 1000) / 1e6;
    await putLimits(keyport, user.token, { monthlyBudgetUsd: budgetUsd });
    expectBudgetRefusal(await chat(keyport, user.token, body), /Your monthly budget would be exceeded/);
  });
});
