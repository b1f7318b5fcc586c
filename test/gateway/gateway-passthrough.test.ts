import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  anthropicVia,
  createUsageBarrier,
  createUsers,
  drain,
  type GatewayKeyport,
  keyView,
  openAiVia,
  settledUsage,
  startGateway,
  storeKey,
  type TestUser,
  upstreamRequests,
} from "./gateway-support.js";

const CHAT = "/v1/chat/completions";
const MESSAGES = "/v1/messages";
const OPERATOR_ORGANIZATION = "org-operator0001";
const OPERATOR_PROJECT = "proj_operator0001";

function chatBody(user: TestUser) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

function messagesBody(user: TestUser) {
  return { model: "claude-haiku-4-5", max_tokens: 32, messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

/** Header names a response carried, lower-case and sorted. */
function headerNames(headers: Headers): string[] {
  return [...headers.keys()].sort();
}

/** What passes between the client and the provider, in both directions: headers, query strings, encodings, bodies. */
describe("gateway pass-through: what the client may steer and what comes back", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;

  beforeAll(async () => {
    keyport = await startGateway({
      env: {
        PLATFORM_OPENAI_ORGANIZATION: OPERATOR_ORGANIZATION,
        PLATFORM_OPENAI_PROJECT: OPERATOR_PROJECT,
        KEYPORT_PLATFORM_BETA_HEADERS: "assistants=v2,prompt-caching-2024-07-31",
      },
    });
    newUser = createUsers(keyport, "pass");
    barrier = createUsageBarrier(keyport);
  });
  afterAll(async () => {
    await keyport.close();
  });

  describe("request headers", () => {
    const steering = { "openai-organization": "org-attacker", "openai-project": "proj_attacker", "openai-beta": "realtime=v1, assistants=v2" };

    it("a platform call never carries the caller's account headers: the operator's configured ones go instead", async () => {
      const user = await newUser("community");
      const { response } = await openAiVia(keyport, user.token)
        .chat.completions.create(chatBody(user), { headers: steering })
        .withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      const [upstream] = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream?.headers).toMatchObject({ "openai-organization": OPERATOR_ORGANIZATION, "openai-project": OPERATOR_PROJECT });
      // Beta values pass on the platform key only when the operator listed them.
      expect(upstream?.headers["openai-beta"]).toBe("assistants=v2");
    });

    it("a call on the owner's own key forwards the caller's account and beta headers as sent", async () => {
      const user = await newUser("premium");
      await storeKey(keyport, user, "openai");
      const { response } = await openAiVia(keyport, user.token)
        .chat.completions.create(chatBody(user), { headers: steering })
        .withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      const [upstream] = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream?.headers).toMatchObject(steering);
    });

    it("anthropic-beta on the platform key keeps only the listed betas; anthropic-version passes as sent", async () => {
      const user = await newUser("community");
      await anthropicVia(keyport, user.token).messages.create(messagesBody(user), {
        headers: { "anthropic-beta": "prompt-caching-2024-07-31,context-1m-2025-08-07" },
      });
      const [upstream] = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream?.headers["anthropic-beta"]).toBe("prompt-caching-2024-07-31");
      expect(upstream?.headers["anthropic-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    });

    it("a platform call whose betas are all unlisted sends no beta header at all", async () => {
      const user = await newUser("community");
      await anthropicVia(keyport, user.token).messages.create(messagesBody(user), { headers: { "anthropic-beta": "context-1m-2025-08-07" } });
      const [upstream] = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream?.headers).not.toHaveProperty("anthropic-beta");
    });
  });

  describe("response headers", () => {
    it("a platform call relays no account or rate-limit header of the operator's account, nor anything unlisted", async () => {
      const user = await newUser("community");
      const platformKey = keyport.platformKeys.openai ?? "";
      keyport.mock.injectFault({ kind: "alter", headers: { "x-debug-key": platformKey, "set-cookie": "a=1" }, match: { path: CHAT, key: platformKey } });
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      keyport.mock.clearFaults();
      expect(JSON.stringify([...response.headers.entries()])).not.toContain(platformKey.slice(8, 24));
      const names = headerNames(response.headers);
      expect(names.filter((name) => name.startsWith("x-ratelimit-") || name.startsWith("openai-organization") || name === "openai-project")).toEqual([]);
      expect(names).not.toContain("x-debug-key");
      expect(names).not.toContain("openai-version");
      // What is relayed: the content type, the provider's request id and processing time, and Keyport's own.
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(response.headers.get("x-upstream-request-id")).toMatch(/^req_/);
      expect(response.headers.get("openai-processing-ms")).toBe("1");
      expect(response.headers.get("ratelimit-limit")).toBe("10");
    });

    it("a call on the owner's own key relays the provider's rate-limit headers, which describe the owner's account", async () => {
      const user = await newUser("premium");
      await storeKey(keyport, user, "openai");
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("4999");
      expect(response.headers.get("openai-organization")).toBeNull();

      const anthropicUser = await newUser("premium");
      await storeKey(keyport, anthropicUser, "anthropic");
      const { response: anthropicResponse } = await anthropicVia(keyport, anthropicUser.token).messages.create(messagesBody(anthropicUser)).withResponse();
      expect(anthropicResponse.headers.get("anthropic-ratelimit-requests-remaining")).toBe("49");
      expect(anthropicResponse.headers.get("anthropic-organization-id")).toBeNull();
      expect(anthropicResponse.headers.get("request-id")).toMatch(/^req_/);
    });

    it("an Anthropic platform call relays no anthropic-ratelimit-* header", async () => {
      const user = await newUser("community");
      const { response } = await anthropicVia(keyport, user.token).messages.create(messagesBody(user)).withResponse();
      expect(headerNames(response.headers).filter((name) => name.startsWith("anthropic-"))).toEqual([]);
    });
  });

  describe("error bodies", () => {
    it("scrubs any 16-character run of the key used, whatever surrounds it", async () => {
      const user = await newUser("community");
      const platformKey = keyport.platformKeys.openai ?? "";
      const fragment = platformKey.slice(10, 32);
      const body = { error: { message: `Upstream proxy refused key ${fragment} and (${platformKey.slice(-20)}).`, type: "invalid_request_error", param: null, code: null } };
      keyport.mock.injectFault({ kind: "status", status: 400, body, match: { path: CHAT, key: platformKey } });
      const failure = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
      const message = (failure as InstanceType<typeof OpenAI.APIError>).message;
      expect(message).not.toContain(fragment.slice(0, 16));
      expect(message).not.toContain(platformKey.slice(-16));
      expect(message).toContain("Upstream proxy refused key");
    });
  });

  describe("query strings", () => {
    it("sends none of the caller's query parameters to an endpoint that defines none (a token in the URL stays here)", async () => {
      const user = await newUser("community");
      const response = await keyport.request("POST", `/openai/v1/chat/completions?token=${user.token}&api-version=1`, { token: user.token, body: chatBody(user) });
      expect(response.status, response.text).toBe(200);
      const [upstream] = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream?.search).toBe("");
    });

    it("passes only the parameters the endpoint defines", async () => {
      const user = await newUser("community");
      keyport.mock.clearRequests();
      const response = await keyport.request("GET", `/anthropic/v1/models?limit=2&token=${user.token}&after_id=claude-x`, {
        token: user.token,
        headers: { "anthropic-version": "2023-06-01" },
      });
      expect(response.status, response.text).toBe(200);
      const upstream = keyport.mock.requests().filter((request) => request.path === "/v1/models");
      expect(upstream.map((request) => request.search)).toEqual(["?limit=2&after_id=claude-x"]);
    });
  });

  describe("compressed answers (despite accept-encoding: identity)", () => {
    it.each(["gzip", "deflate", "br"] as const)("a %s JSON answer reaches the SDK intact and its usage is recorded", async (contentEncoding) => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.injectFault({ kind: "alter", contentEncoding, match: { path: CHAT, key: key.apiKey } });
      const completion = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user));
      expect(completion.choices[0]?.message.content).toBe(`Mock reply: Hello from ${user.marker}`);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records[0]).toMatchObject({ status: "ok", inputTokens: completion.usage?.prompt_tokens, outputTokens: completion.usage?.completion_tokens });
    });

    it("a gzip stream reaches the SDK event by event and its usage is recorded", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "anthropic");
      keyport.mock.injectFault({ kind: "alter", contentEncoding: "gzip", match: { path: MESSAGES, key: key.apiKey } });
      const received = await drain(await anthropicVia(keyport, user.token).messages.create({ ...messagesBody(user), stream: true }));
      expect(received.error).toBeUndefined();
      expect(received.items.map((event) => event.type).at(-1)).toBe("message_stop");
      const start = received.items[0];
      if (start?.type !== "message_start") throw new Error("no message_start");
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records[0]).toMatchObject({ status: "ok", streamed: true, inputTokens: start.message.usage.input_tokens });
      expect(records[0]?.outputTokens).toBeGreaterThan(0);
    });

    it("a gzip OpenAI stream still has Keyport's usage chunk removed", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.injectFault({ kind: "alter", contentEncoding: "gzip", match: { path: CHAT, key: key.apiKey } });
      const received = await drain(await openAiVia(keyport, user.token).chat.completions.create({ ...chatBody(user), stream: true }));
      expect(received.error).toBeUndefined();
      expect(received.items.every((chunk) => chunk.choices.length > 0)).toBe(true);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records[0]?.inputTokens).toBeGreaterThan(0);
    });

    it("a gzip error answer is classified and scrubbed like a plain one", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.setKey(key.apiKey, "invalid");
      keyport.mock.injectFault({ kind: "alter", contentEncoding: "gzip", match: { path: CHAT, key: key.apiKey } });
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      // The 401 was read through the compression: the key is marked with the provider's words and the call fell back.
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      const view = await keyView(keyport, user, key.id);
      expect(view).toMatchObject({ status: "invalid" });
      expect(String(view.statusDetail)).toMatch(/^Incorrect API key provided/);
    });
  });

  describe("request bodies", () => {
    it("a stream_options nested 300,000 levels deep is a 400 in the provider's shape, not a 500", async () => {
      const user = await newUser("community");
      const depth = 300_000;
      const rawBody = `{"model":"gpt-4o-mini","stream":true,"messages":[],"stream_options":{"x":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
      const response = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, rawBody, headers: { "content-type": "application/json" } });
      expect(response.status, response.text).toBe(400);
      expect(response.body).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_request" } });
      expect(response.body.error.message).toMatch(/stream_options/);
    });

    it("a deeply nested conversation with a stream_options to complete is not re-serialised whole", async () => {
      const user = await newUser("community");
      const depth = 300_000;
      const rawBody = `{"model":"gpt-4o-mini","stream":true,"stream_options":{},"messages":[{"role":"user","content":"x ${user.marker}","n":${"[".repeat(depth)}${"]".repeat(depth)}}]}`;
      const response = await keyport.request("POST", "/openai/v1/chat/completions", { token: user.token, rawBody, headers: { "content-type": "application/json" } });
      expect(response.status).not.toBe(500);
      // The recorded request is too deep for the other tests' filters to stringify.
      keyport.mock.clearRequests();
    });

    it.each([
      ["text/plain", "openai"],
      ["application/json; charset=utf-16", "openai"],
      ["application/x-www-form-urlencoded", "anthropic"],
      ["text/plain", "anthropic"],
    ] as const)("a %s body on a JSON route (%s) is a 415 in the provider's shape", async (contentType, provider) => {
      const user = await newUser("community");
      const route = provider === "openai" ? "/openai/v1/chat/completions" : "/anthropic/v1/messages";
      const body = provider === "openai" ? chatBody(user) : messagesBody(user);
      const response = await keyport.request("POST", route, { token: user.token, rawBody: JSON.stringify(body), headers: { "content-type": contentType } });
      expect(response.status, response.text).toBe(415);
      if (provider === "openai") expect(response.body).toMatchObject({ error: { type: "invalid_request_error", code: "unsupported_media_type" } });
      else expect(response.body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
      expect(upstreamRequests(keyport.mock, { marker: user.marker })).toEqual([]);
    });

    it("accepts application/json with charset=utf-8 in any case", async () => {
      const user = await newUser("community");
      const response = await keyport.request("POST", "/openai/v1/chat/completions", {
        token: user.token,
        rawBody: JSON.stringify(chatBody(user)),
        headers: { "content-type": "Application/JSON; Charset=UTF-8" },
      });
      expect(response.status, response.text).toBe(200);
    });
  });
});
