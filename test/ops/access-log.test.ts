import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { drain, type GatewayKeyport, openAiVia, startGateway, storeKey, type TestUser, waitForUsage } from "../gateway/gateway-support.js";

const CHAT = "/openai/v1/chat/completions";

type LogLine = Record<string, unknown> & { level: number; msg: string };

function chatBody(user: TestUser, call = 0) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Call ${call} from ${user.marker}` }] };
}

async function newUser(keyport: GatewayKeyport, name: string): Promise<TestUser> {
  const sub = `access-${name}-${Date.now().toString(36)}`;
  return { sub, owner: `user:${sub}`, token: await keyport.token(sub, { tier: "premium" }), marker: `marker-${sub}` };
}

function accessLines(keyport: GatewayKeyport): LogLine[] {
  return keyport.logs.map((line) => JSON.parse(line) as LogLine).filter((line) => line.msg === "gateway call");
}

/** The access line of one request id, once it is written (right after the answer went out). */
async function accessLine(keyport: GatewayKeyport, requestId: string): Promise<LogLine> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const found = accessLines(keyport).filter((line) => line.requestId === requestId);
    if (found.length > 0) {
      expect(found).toHaveLength(1);
      return found[0] as LogLine;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no access log line for ${requestId}`);
}

describe("the access log: one info line per gateway call", () => {
  let keyport: GatewayKeyport;
  let user: TestUser;
  let apiKey: string;

  beforeAll(async () => {
    keyport = await startGateway({ env: { LOG_LEVEL: "info" } });
    user = await newUser(keyport, "user");
    apiKey = (await storeKey(keyport, user, "openai")).apiKey;
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("names the request, owner, provider, model, key source, status, tokens and where the time went; the client's x-request-id is used and returned", async () => {
    const requestId = "trace-4f2a.b_9:x";
    const response = await keyport.request("POST", CHAT, { token: user.token, body: chatBody(user), headers: { "x-request-id": requestId } });
    expect(response.status, response.text).toBe(200);
    expect(response.headers.get("x-request-id")).toBe(requestId);
    const line = await accessLine(keyport, requestId);
    expect(line).toMatchObject({
      level: 30,
      requestId,
      owner: user.owner,
      provider: "openai",
      endpoint: "chat.completions",
      route: CHAT,
      model: expect.stringMatching(/^gpt-4o-mini/),
      source: "byok",
      status: 200,
      outcome: "ok",
      inputTokens: response.body.usage.prompt_tokens,
      outputTokens: response.body.usage.completion_tokens,
    });
    for (const field of ["latencyMs", "ttfbMs", "upstreamMs", "addedMs"]) expect(typeof line[field], field).toBe("number");
    expect(line.addedMs as number).toBeLessThanOrEqual(line.ttfbMs as number);
    expect((line.upstreamMs as number) + (line.addedMs as number)).toBeCloseTo(line.ttfbMs as number, 1);
    // The usage record carries the same id.
    const records = await waitForUsage(keyport, user.owner, 1);
    expect(records.map((record) => record.requestId)).toContain(requestId);
  });

  it.each([
    ["with a space", "abc def"],
    ["with markup", "<script>"],
    ["with a newline escape", "a\\nb"],
    ["longer than 128 characters", "a".repeat(129)],
    ["with non-ASCII letters", "zürich"],
  ])("an x-request-id %s is replaced by Keyport's own id", async (_name, given) => {
    const response = await fetch(`${keyport.url}${CHAT}`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json", "x-request-id": given },
      body: JSON.stringify(chatBody(user)),
    });
    expect(response.status).toBe(200);
    const id = response.headers.get("x-request-id") ?? "";
    expect(id).toMatch(/^req_[0-9a-z]{26}$/);
    expect((await accessLine(keyport, id)).requestId).toBe(id);
    expect(keyport.logs.some((raw) => raw.includes(given))).toBe(false);
  });

  it("a credential sent as x-request-id or as the model never reaches the log", async () => {
    const asId = await keyport.request("POST", CHAT, { token: user.token, body: chatBody(user), headers: { "x-request-id": user.token } });
    const id = asId.headers.get("x-request-id") ?? "";
    expect(id).toMatch(/^req_/);
    await accessLine(keyport, id);
    const fakeKey = "sk-proj-NotARealKeyButShapedLikeOne1234";
    const asModel = await keyport.request("POST", CHAT, {
      token: user.token,
      body: { ...chatBody(user), model: fakeKey },
      headers: { "x-request-id": "model-as-key" },
    });
    expect(asModel.status).toBeGreaterThan(0);
    expect((await accessLine(keyport, "model-as-key")).model).toBe("[redacted]");
    expect(keyport.logs.some((line) => line.includes(fakeKey) || line.includes(user.token))).toBe(false);
  });

  it("takes an id of exactly 128 safe characters", async () => {
    const given = "A".repeat(64) + "z9._:-".repeat(10) + "abcd";
    expect(given).toHaveLength(128);
    const response = await keyport.request("GET", "/openai/v1/models", { token: user.token, headers: { "x-request-id": given } });
    expect(response.headers.get("x-request-id")).toBe(given);
    expect(await accessLine(keyport, given)).toMatchObject({ endpoint: "models", status: 200 });
  });

  it("logs refused calls with Keyport's error code, and a stream with its time to first byte", async () => {
    const refused = await keyport.request("POST", CHAT, { token: "not-a-jwt", body: chatBody(user), headers: { "x-request-id": "refused-1" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("x-request-id")).toBe("refused-1");
    const line = await accessLine(keyport, "refused-1");
    expect(line).toMatchObject({ status: 401, outcome: "refused", code: "unauthenticated", provider: "openai" });
    expect(line.owner).toBeUndefined();
    expect(line.inputTokens).toBeUndefined();

    const stream = await openAiVia(keyport, user.token).chat.completions.create({ ...chatBody(user, 2), stream: true }, { headers: { "x-request-id": "stream-1" } });
    expect((await drain(stream)).error).toBeUndefined();
    expect(await accessLine(keyport, "stream-1")).toMatchObject({ status: 200, outcome: "ok", source: "byok", ttfbMs: expect.any(Number) });
  });

  it("the management API honours the same x-request-id rule", async () => {
    const taken = await keyport.request("GET", "/api/v1/api-keys", { token: user.token, headers: { "x-request-id": "mgmt-7" } });
    expect(taken.headers.get("x-request-id")).toBe("mgmt-7");
    const replaced = await keyport.request("GET", "/api/v1/api-keys", { token: user.token, headers: { "x-request-id": "bad id" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("no line carries a provider key, a Keyport token or its signature, or the prompt", () => {
    const all = keyport.logs.join("\n");
    expect(accessLines(keyport).length).toBeGreaterThan(5);
    for (const secret of [apiKey, apiKey.slice(-12), user.token, user.token.split(".")[2] ?? "", keyport.platformKeys.openai ?? "", user.marker]) {
      expect(secret).not.toBe("");
      expect(all.includes(secret), `a log line holds ${secret.slice(0, 6)}…`).toBe(false);
    }
  });
});

describe("KEYPORT_ACCESS_LOG=false", () => {
  it("writes no line per gateway call; the x-request-id is still honoured", async () => {
    const keyport = await startGateway({ env: { LOG_LEVEL: "info", KEYPORT_ACCESS_LOG: "false" } });
    try {
      const user = await newUser(keyport, "off");
      await storeKey(keyport, user, "openai");
      const response = await keyport.request("POST", CHAT, { token: user.token, body: chatBody(user), headers: { "x-request-id": "off-1" } });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-request-id")).toBe("off-1");
      await waitForUsage(keyport, user.owner, 1);
      expect(keyport.logs.filter((line) => line.includes("gateway call"))).toEqual([]);
      expect(keyport.logs.filter((line) => line.includes("off-1"))).toEqual([]);
    } finally {
      await keyport.close();
    }
  });
});
