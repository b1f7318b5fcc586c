import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../src/config/tiers.js";
import { createUsers, type GatewayKeyport, startGateway, storeKey, type TestUser } from "../gateway/gateway-support.js";

const TIERS = { ...DEFAULT_TIERS, community: { ...DEFAULT_TIERS.community, platformMonthlyBudgetUsd: 1.5 } };

describe("GET and PUT /api/v1/limits", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;

  beforeAll(async () => {
    keyport = await startGateway({ env: { KEYPORT_TIERS: JSON.stringify(TIERS) } });
    newUser = createUsers(keyport, "limits");
  });
  afterAll(async () => keyport?.close());

  const put = async (user: TestUser, body: unknown) => keyport.request("PUT", "/api/v1/limits", { token: user.token, body });

  it("starts empty, with this UTC month's period and the webhook secret", async () => {
    const user = await newUser("premium");
    const response = await keyport.request("GET", "/api/v1/limits", { token: user.token });
    expect(response.status, response.text).toBe(200);
    const now = new Date();
    const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    const resetsAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    expect(response.body).toEqual({
      monthlyBudgetUsd: null,
      notifyThresholdUsd: null,
      notifyEmail: null,
      webhookUrl: null,
      webhookSecret: expect.stringMatching(/^whsec_/),
      period: { start, resetsAt },
      spentUsd: 0,
      caps: [],
    });
  });

  it("saves a subset, leaves the rest unchanged, and null clears a field", async () => {
    const user = await newUser("premium");
    // The largest budget round-trips exactly.
    expect((await put(user, { monthlyBudgetUsd: 1_000_000 })).body.monthlyBudgetUsd).toBe(1_000_000);
    const saved = await put(user, { monthlyBudgetUsd: 50, notifyThresholdUsd: 40.5, notifyEmail: "ops@example.com" });
    expect(saved.status, saved.text).toBe(200);
    expect(saved.body).toMatchObject({ monthlyBudgetUsd: 50, notifyThresholdUsd: 40.5, notifyEmail: "ops@example.com", webhookUrl: null });
    expect(saved.body.caps).toEqual([{ kind: "owner_budget", limitUsd: 50, spentUsd: 0, remainingUsd: 50 }]);

    const partial = await put(user, { notifyThresholdUsd: 45.123456 });
    expect(partial.body).toMatchObject({ monthlyBudgetUsd: 50, notifyThresholdUsd: 45.123456, notifyEmail: "ops@example.com" });

    const cleared = await put(user, { monthlyBudgetUsd: null, notifyEmail: null });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body).toMatchObject({ monthlyBudgetUsd: null, notifyThresholdUsd: 45.123456, notifyEmail: null, caps: [] });
    const read = await keyport.request("GET", "/api/v1/limits", { token: user.token });
    expect(read.body).toMatchObject({ monthlyBudgetUsd: null, notifyThresholdUsd: 45.123456, notifyEmail: null });
  });

  it("a threshold above the budget is accepted (it is simply never reached)", async () => {
    const user = await newUser("premium");
    const saved = await put(user, { monthlyBudgetUsd: 10, notifyThresholdUsd: 20 });
    expect(saved.status, saved.text).toBe(200);
  });

  it.each([
    [{ monthlyBudgetUsd: -1 }, "monthlyBudgetUsd"],
    [{ monthlyBudgetUsd: 1.0000001 }, "monthlyBudgetUsd"],
    [{ monthlyBudgetUsd: 1e10 }, "monthlyBudgetUsd"],
    [{ monthlyBudgetUsd: 1_000_001 }, "monthlyBudgetUsd"],
    [{ monthlyBudgetUsd: "12" }, "monthlyBudgetUsd"],
    [{ notifyThresholdUsd: -0.5 }, "notifyThresholdUsd"],
    [{ notifyThresholdUsd: true }, "notifyThresholdUsd"],
    [{ notifyEmail: "not an email" }, "notifyEmail"],
    [{ notifyEmail: `${"a".repeat(250)}@example.com` }, "notifyEmail"],
    [{ notifyEmail: 42 }, "notifyEmail"],
    [{ webhookUrl: 7 }, "webhookUrl"],
    [{ dailyBudgetUsd: 5 }, "dailyBudgetUsd"],
  ])("refuses %j with 400 naming %s, and changes nothing", async (body, field) => {
    const user = await newUser("premium");
    await put(user, { monthlyBudgetUsd: 5 });
    const response = await put(user, { notifyThresholdUsd: 1, ...body });
    expect(response.status, response.text).toBe(400);
    expect(response.body.error.code).toBe("invalid_request");
    expect(response.body.error.message).toContain(field);
    const read = await keyport.request("GET", "/api/v1/limits", { token: user.token });
    expect(read.body).toMatchObject({ monthlyBudgetUsd: 5, notifyThresholdUsd: null });
  });

  it.each([
    ["ftp://hooks.example.com/x", /webhookUrl/],
    ["https://127.0.0.1/hook", /webhookUrl must point to a public address: 127\.0\.0\.1 is a loopback address/],
    ["https://169.254.169.254/latest/meta-data/", /cloud metadata address/],
    ["https://user:pass@hooks.example.com/x", /webhookUrl/],
  ])("refuses the webhook URL %s with 400 invalid_webhook_url", async (url, message) => {
    const user = await newUser("premium");
    const response = await put(user, { webhookUrl: url });
    expect(response.status, response.text).toBe(400);
    expect(response.body.error.code).toBe("invalid_webhook_url");
    expect(response.body.error.message).toMatch(message);
  });

  it("shows a key's limit and the plan's platform allowance among the caps, owner budget first", async () => {
    const user = await newUser("community");
    const key = await storeKey(keyport, user, "openai");
    const patched = await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, { token: user.token, body: { monthlyLimitUsd: 5, label: "Production" } });
    expect(patched.status, patched.text).toBe(200);
    const saved = await put(user, { monthlyBudgetUsd: 50 });
    expect(saved.body.caps).toEqual([
      { kind: "owner_budget", limitUsd: 50, spentUsd: 0, remainingUsd: 50 },
      { kind: "key_limit", keyId: key.id, label: "Production", provider: "openai", limitUsd: 5, spentUsd: 0, remainingUsd: 5 },
      { kind: "platform_allowance", tier: "community", limitUsd: 1.5, spentUsd: 0, remainingUsd: 1.5 },
    ]);
  });

  it("needs a token", async () => {
    expect((await keyport.request("GET", "/api/v1/limits")).status).toBe(401);
    expect((await keyport.request("PUT", "/api/v1/limits", { body: { monthlyBudgetUsd: 1 } })).status).toBe(401);
  });
});
