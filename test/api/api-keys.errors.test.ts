import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startKeyport, type RequestOptions, type TestKeyport, type TestResponse } from "../support/harness.js";
import { anthropicKey, openAiKey, randomToken } from "../support/keys.js";

/**
 * Every error path of `/api/v1/api-keys` over real HTTP: status, the error envelope, and that a
 * refused request stored nothing, changed nothing, wrote no audit event and sent nothing upstream.
 */

type Caller = { sub: string; owner: string; token: string };

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  409: "conflict_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  422: "invalid_request_error",
  429: "rate_limit_error",
};

async function newCaller(keyport: TestKeyport): Promise<Caller> {
  const sub = `u-${randomToken(12)}`;
  return { sub, owner: `user:${sub}`, token: await keyport.token(sub) };
}

/** Asserts the status and the whole error envelope; returns the message. */
function expectError(response: TestResponse, status: number, code: string): string {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  expect(response.body).toEqual({
    error: { type: ERROR_TYPES[status], code, message: expect.any(String), requestId: expect.any(String) },
  });
  const { message, requestId } = response.body.error as { message: string; requestId: string };
  expect(message.length).toBeGreaterThan(0);
  expect(requestId).toBe(response.headers.get("x-request-id"));
  return message;
}

type AuditEvent = { type: string; keyId: string | null; detail: Record<string, unknown> };

/** A refused key attempt as its `key.rejected` audit event tells it. */
type Rejection = { operation: "create" | "replace" | "test"; reason: "format_error" | "provider_rejected" | "rate_limited" | "duplicate" };

type State = { keys: string; audit: string; rejections: Rejection[] };

/**
 * The owner's keys and audit trail as the API renders them, byte for byte, with the refused
 * attempts (`key.rejected`, newest first) apart: a refused request changes nothing else. Every
 * rejection event is checked to quote no part of any key the test submitted.
 */
async function stateOf(keyport: TestKeyport, caller: Caller, submittedKeys: readonly string[] = []): Promise<State> {
  const keys = await keyport.request("GET", "/api/v1/api-keys", { token: caller.token });
  const audit = await keyport.request("GET", "/api/v1/audit?limit=100", { token: caller.token });
  expect(keys.status, keys.text).toBe(200);
  expect(audit.status, audit.text).toBe(200);
  const events = audit.body.events as AuditEvent[];
  const rejections = events.filter((event) => event.type === "key.rejected");
  for (const key of submittedKeys) expect(leakedFragments(JSON.stringify(rejections), key)).toEqual([]);
  return {
    // The keys themselves; the listing's plan and routing follow from them and the caller's tier.
    keys: JSON.stringify(keys.body.keys),
    audit: JSON.stringify({ events: events.filter((event) => event.type !== "key.rejected"), nextCursor: audit.body.nextCursor }),
    rejections: rejections.map(({ detail }) => ({ operation: detail.operation, reason: detail.reason }) as Rejection),
  };
}

/** `state` after one more refused attempt. */
function rejected(state: State, operation: Rejection["operation"], reason: Rejection["reason"]): State {
  return { ...state, rejections: [{ operation, reason }, ...state.rejections] };
}

const EMPTY_STATE: State = { keys: JSON.stringify([]), audit: JSON.stringify({ events: [], nextCursor: null }), rejections: [] };

/** Length of the well-known, non-secret prefix of a key shape. */
function publicPrefixLength(key: string): number {
  return /^(?:sk-ant-(?:api|admin)\d\d-|sk-proj-|sk-admin-|sk-svcacct-|sk-)/.exec(key)?.[0].length ?? 0;
}

/** Every 8-character window of `key` that holds at least one character beyond its public prefix and occurs in `text`. */
function leakedFragments(text: string, key: string): string[] {
  const leaks: string[] = [];
  if (text.includes(key)) leaks.push(key);
  for (let start = Math.max(0, publicPrefixLength(key) - 7); start + 8 <= key.length; start += 1) {
    const window = key.slice(start, start + 8);
    if (text.includes(window)) leaks.push(window);
  }
  return leaks;
}

async function createKey(keyport: TestKeyport, caller: Caller, body: Record<string, unknown>, headers?: Record<string, string>) {
  return keyport.request("POST", "/api/v1/api-keys", { token: caller.token, body, ...(headers === undefined ? {} : { headers }) });
}

/** A valid OpenAI key stored for `caller`; returns its id. */
async function storeValidKey(keyport: TestKeyport, caller: Caller): Promise<{ id: string; apiKey: string }> {
  const apiKey = openAiKey();
  keyport.mock.setKey(apiKey, "valid");
  const response = await createKey(keyport, caller, { provider: "openai", apiKey, label: "Original" });
  expect(response.status, response.text).toBe(201);
  return { id: response.body.id as string, apiKey };
}

async function closedPortUrl(suffix: string): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${suffix}`;
}

describe("management API errors", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport();
  });
  afterAll(async () => {
    await keyport.close();
  });
  beforeEach(() => {
    keyport.mock.clearRequests();
    keyport.mock.clearFaults();
  });

  describe("400 invalid_json", () => {
    it("refuses a malformed body without echoing a key in it", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      for (const rawBody of [
        `{"provider":"openai","apiKey":"${apiKey}"`,
        `{"provider":"openai","apiKey":"${apiKey}",}`,
        `{"provider":"openai","apiKey":${apiKey}}`,
        `{'provider':'openai','apiKey':'${apiKey}'}`,
        "{",
      ]) {
        const response = await keyport.request("POST", "/api/v1/api-keys", {
          token: caller.token,
          rawBody,
          headers: { "content-type": "application/json" },
        });
        expectError(response, 400, "invalid_json");
        expect(leakedFragments(response.text, apiKey), rawBody).toEqual([]);
      }
      expect(leakedFragments(keyport.logs.join("\n"), apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("refuses a malformed PATCH or secret body and leaves the key unchanged", async () => {
      const caller = await newCaller(keyport);
      const { id } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      const replacement = openAiKey();
      const headers = { "content-type": "application/json" };
      const patch = await keyport.request("PATCH", `/api/v1/api-keys/${id}`, { token: caller.token, rawBody: '{"label":"x"', headers });
      expectError(patch, 400, "invalid_json");
      const secret = await keyport.request("PUT", `/api/v1/api-keys/${id}/secret`, {
        token: caller.token,
        rawBody: `{"apiKey":"${replacement}`,
        headers,
      });
      expectError(secret, 400, "invalid_json");
      expect(leakedFragments(secret.text, replacement)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(before);
    });
  });

  describe("413 payload_too_large", () => {
    it("refuses a body over 64 KiB and stores nothing", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await createKey(keyport, caller, { provider: "openai", apiKey, label: "x".repeat(70_000) });
      expectError(response, 413, "payload_too_large");
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("refuses an oversized PATCH and leaves the key unchanged", async () => {
      const caller = await newCaller(keyport);
      const { id } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      const response = await keyport.request("PATCH", `/api/v1/api-keys/${id}`, {
        token: caller.token,
        body: { label: "ok", padding: "y".repeat(66_000) },
      });
      expectError(response, 413, "payload_too_large");
      expect(await stateOf(keyport, caller)).toEqual(before);
    });
  });

  describe("400 invalid_request on create", () => {
    const cases: Array<[string, (apiKey: string) => unknown]> = [
      ["provider is a number", (apiKey) => ({ provider: 1, apiKey })],
      ["apiKey is a number", () => ({ provider: "openai", apiKey: 123 })],
      ["activate is a string", (apiKey) => ({ provider: "openai", apiKey, activate: "yes" })],
      ["label is a number", (apiKey) => ({ provider: "openai", apiKey, label: 7 })],
      ["unknown field owner", (apiKey) => ({ provider: "openai", apiKey, owner: "user:victim-owner" })],
      ["unknown field status", (apiKey) => ({ provider: "openai", apiKey, status: "valid" })],
      ["unknown field keyHint", (apiKey) => ({ provider: "openai", apiKey, keyHint: "****...HACK" })],
      ["unknown field isActive", (apiKey) => ({ provider: "openai", apiKey, isActive: true })],
      ["unknown field monthlyLimitUsd", (apiKey) => ({ provider: "openai", apiKey, monthlyLimitUsd: 10 })],
      ["provider gemini", (apiKey) => ({ provider: "gemini", apiKey })],
      ["missing apiKey", () => ({ provider: "openai" })],
      ["missing provider", (apiKey) => ({ apiKey })],
      ["empty apiKey", () => ({ provider: "openai", apiKey: "" })],
      ["label with a newline", (apiKey) => ({ provider: "openai", apiKey, label: "Production\nkey" })],
      // Labels are single-line: Unicode line separators and C1 controls break lines in UIs and logs too.
      ["label with a U+2028 line separator", (apiKey) => ({ provider: "openai", apiKey, label: "Production\u2028key" })],
      ["label with a U+0085 next-line control", (apiKey) => ({ provider: "openai", apiKey, label: "Production\u0085key" })],
      ["empty label", (apiKey) => ({ provider: "openai", apiKey, label: "" })],
      ["label over 100 characters", (apiKey) => ({ provider: "openai", apiKey, label: "l".repeat(101) })],
      ["body is an array", (apiKey) => [{ provider: "openai", apiKey }]],
      ["body is a string", (apiKey) => apiKey],
      ["body is null", () => null],
    ];

    it.each(cases)("%s", async (_name, build) => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await keyport.request("POST", "/api/v1/api-keys", {
        token: caller.token,
        rawBody: JSON.stringify(build(apiKey)),
        headers: { "content-type": "application/json" },
      });
      const message = expectError(response, 400, "invalid_request");
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(message).not.toContain("victim-owner");
      expect(message).not.toContain("HACK");
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it.each([
      ["__proto__", (apiKey: string) => `{"provider":"openai","apiKey":"${apiKey}","__proto__":{"status":"valid","isActive":true}}`],
      ["constructor.prototype", (apiKey: string) => `{"provider":"openai","apiKey":"${apiKey}","constructor":{"prototype":{"owner":"user:x"}}}`],
    ])("refuses %s in the body", async (_name, build) => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await keyport.request("POST", "/api/v1/api-keys", {
        token: caller.token,
        rawBody: build(apiKey),
        headers: { "content-type": "application/json" },
      });
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
      // Keyport runs in this process: a polluted prototype would show here.
      expect(({} as Record<string, unknown>)["status"]).toBeUndefined();
      expect(({} as Record<string, unknown>)["owner"]).toBeUndefined();
      // The body is valid JSON with a forbidden field, like any other unknown field.
      expectError(response, 400, "invalid_request");
    });

    it("refuses a body that is not JSON", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const rawBody = JSON.stringify({ provider: "openai", apiKey });
      const form = await keyport.request("POST", "/api/v1/api-keys", {
        token: caller.token,
        rawBody,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expectError(form, 415, "unsupported_media_type");
      const text = await keyport.request("POST", "/api/v1/api-keys", { token: caller.token, rawBody, headers: { "content-type": "text/plain" } });
      expectError(text, 415, "unsupported_media_type");
      for (const response of [form, text]) expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it.each([
      ["provider=gemini", "/api/v1/api-keys?provider=gemini"],
      ["an unknown list parameter", "/api/v1/api-keys?owner=user:someone"],
      ["audit limit 0", "/api/v1/audit?limit=0"],
      ["audit limit 1000", "/api/v1/audit?limit=1000"],
      ["a non-numeric audit limit", "/api/v1/audit?limit=ten"],
    ])("refuses %s in the query", async (_name, route) => {
      const caller = await newCaller(keyport);
      expectError(await keyport.request("GET", route, { token: caller.token }), 400, "invalid_request");
    });
  });

  describe("415 unsupported_media_type", () => {
    it.each([
      ["text/plain", "text/plain"],
      ["text/plain with a charset", "text/plain; charset=utf-8"],
      ["JSON in UTF-16", "application/json; charset=utf-16"],
      ["JSON in UTF-16LE, quoted", 'application/json; charset="UTF-16LE"'],
      ["JSON in Latin-1", "application/json;charset=iso-8859-1"],
      ["JSON with a second, non-UTF-8 charset", "application/json; charset=utf-8; charset=utf-16"],
      ["a vendor JSON type", "application/vnd.api+json"],
    ])("refuses %s on a JSON route and stores nothing", async (_name, contentType) => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const body = JSON.stringify({ provider: "openai", apiKey });
      const rawBody = contentType.includes("16") ? Buffer.from(body, "utf16le") : body;
      const response = await keyport.request("POST", "/api/v1/api-keys", { token: caller.token, rawBody, headers: { "content-type": contentType } });
      expectError(response, 415, "unsupported_media_type");
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("refuses text/plain on PATCH and leaves the key unchanged", async () => {
      const caller = await newCaller(keyport);
      const { id } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      const response = await keyport.request("PATCH", `/api/v1/api-keys/${id}`, {
        token: caller.token,
        rawBody: JSON.stringify({ label: "Changed" }),
        headers: { "content-type": "text/plain" },
      });
      expectError(response, 415, "unsupported_media_type");
      expect(await stateOf(keyport, caller)).toEqual(before);
    });

    it.each(["application/json; charset=utf-8", "application/json; charset=UTF-8", 'application/json; charset="utf-8"', "application/json;charset=utf8"])(
      "accepts %s",
      async (contentType) => {
        const caller = await newCaller(keyport);
        const apiKey = openAiKey();
        keyport.mock.setKey(apiKey, "valid");
        const response = await keyport.request("POST", "/api/v1/api-keys", {
          token: caller.token,
          rawBody: JSON.stringify({ provider: "openai", apiKey }),
          headers: { "content-type": contentType },
        });
        expect(response.status, response.text).toBe(201);
      },
    );

    it("answers 401, not 415, to an unauthenticated text/plain request", async () => {
      const response = await keyport.request("POST", "/api/v1/api-keys", { rawBody: "{}", headers: { "content-type": "text/plain" } });
      expectError(response, 401, "unauthenticated");
    });
  });

  describe("400 invalid_cursor", () => {
    it.each(["zzzz", "", "evt_zzzz", `key_${"0".repeat(26)}`, `evt_${"z".repeat(200)}`, `evt_${"0".repeat(25)}!`])(
      "refuses the audit cursor %j",
      async (cursor) => {
        const caller = await newCaller(keyport);
        await storeValidKey(keyport, caller);
        const response = await keyport.request("GET", `/api/v1/audit?cursor=${encodeURIComponent(cursor)}`, { token: caller.token });
        expectError(response, 400, "invalid_cursor");
      },
    );

    it("accepts a cursor it handed out", async () => {
      const caller = await newCaller(keyport);
      await storeValidKey(keyport, caller);
      await storeValidKey(keyport, caller);
      const first = await keyport.request("GET", "/api/v1/audit?limit=1", { token: caller.token });
      expect(first.status, first.text).toBe(200);
      const cursor = first.body.nextCursor as string;
      const second = await keyport.request("GET", `/api/v1/audit?limit=1&cursor=${cursor}`, { token: caller.token });
      expect(second.status, second.text).toBe(200);
      expect(second.body.events[0].id < cursor).toBe(true);
    });
  });

  describe("400 invalid_request on PATCH and PUT secret", () => {
    let caller: Caller;
    let id: string;
    let before: { keys: string; audit: string };

    beforeAll(async () => {
      caller = await newCaller(keyport);
      ({ id } = await storeValidKey(keyport, caller));
    });
    // Taken before each case, so one case that wrongly changes the key does not fail the others.
    beforeEach(async () => {
      before = await stateOf(keyport, caller);
      keyport.mock.clearRequests();
    });

    it.each<[string, unknown]>([
      ["an empty body", {}],
      ["isActive as a string", { isActive: "yes" }],
      ["isActive as a number", { isActive: 1 }],
      ["monthlyLimitUsd as a string", { monthlyLimitUsd: "10" }],
      ["a negative monthlyLimitUsd", { monthlyLimitUsd: -1 }],
      ["a huge monthlyLimitUsd", { monthlyLimitUsd: 1e12 }],
      ["a label with a newline", { label: "a\nb" }],
      ["a label with a NUL", { label: "a\u0000b" }],
      ["a label with a U+2029 paragraph separator", { label: "a\u2029b" }],
      ["a label as a number", { label: 5 }],
      ["unknown field owner", { label: "ok", owner: "user:victim-owner" }],
      ["unknown field status", { status: "valid" }],
      ["unknown field keyHint", { keyHint: "****...HACK" }],
      ["unknown field provider", { provider: "anthropic" }],
      ["unknown field apiKey", { apiKey: openAiKey() }],
      ["an array", [{ label: "x" }]],
    ])("PATCH with %s", async (_name, body) => {
      const response = await keyport.request("PATCH", `/api/v1/api-keys/${id}`, { token: caller.token, body });
      const message = expectError(response, 400, "invalid_request");
      expect(message).not.toContain("victim-owner");
      expect(await stateOf(keyport, caller)).toEqual(before);
    });

    it("PATCH with __proto__", async () => {
      const response = await keyport.request("PATCH", `/api/v1/api-keys/${id}`, {
        token: caller.token,
        rawBody: '{"label":"ok","__proto__":{"isActive":false}}',
        headers: { "content-type": "application/json" },
      });
      expect(await stateOf(keyport, caller)).toEqual(before);
      expectError(response, 400, "invalid_request");
    });

    it.each<[string, unknown]>([
      ["an empty body", {}],
      ["apiKey as a number", { apiKey: 123 }],
      ["an extra field", { apiKey: openAiKey(), label: "x" }],
      ["an owner field", { apiKey: openAiKey(), owner: "user:victim-owner" }],
    ])("PUT secret with %s", async (_name, body) => {
      const response = await keyport.request("PUT", `/api/v1/api-keys/${id}/secret`, { token: caller.token, body });
      expectError(response, 400, "invalid_request");
      expect(await stateOf(keyport, caller)).toEqual(before);
      expect(keyport.mock.requests()).toEqual([]);
    });
  });

  describe("400 invalid_key_format", () => {
    const random = () => randomToken(24);
    const cases: Array<[string, "openai" | "anthropic", () => string, RegExp]> = [
      ["an inner space", "openai", () => `sk-proj-${random()} ${random()}`, /spaces|line breaks|invisible/],
      ["an inner tab", "openai", () => `sk-proj-${random()}\t${random()}`, /spaces|line breaks|invisible/],
      ["a newline inside", "openai", () => `sk-proj-${random()}\n${random()}`, /spaces|line breaks|invisible/],
      ["a CRLF inside", "anthropic", () => `sk-ant-api03-${random()}\r\n${random()}AA`, /spaces|line breaks|invisible/],
      ["an NBSP", "openai", () => `sk-proj-${random()}\u00a0${random()}`, /spaces|line breaks|invisible/],
      ["a zero-width space", "openai", () => `sk-proj-${random()}\u200b${random()}`, /spaces|line breaks|invisible/],
      ["a BOM", "anthropic", () => `\ufeffsk-ant-api03-${random()}${random()}AA`, /spaces|line breaks|invisible/],
      ["a non-ASCII letter", "openai", () => `sk-proj-${random()}ü${random()}`, /characters/],
      ["a quote", "openai", () => `sk-proj-${random()}"${random()}`, /characters/],
      ["1000 characters", "openai", () => `sk-proj-${randomToken(992)}`, /too long/],
      ["5 characters", "openai", () => "sk-ab", /too short/],
      ["an Anthropic key sent as openai", "openai", anthropicKey, /Anthropic/],
      ["an OpenAI key sent as anthropic", "anthropic", openAiKey, /OpenAI key/],
      ["an unknown prefix", "openai", () => `pk-${randomToken(48)}`, /start with sk-/],
      ["an OpenAI admin key", "openai", () => `sk-admin-${randomToken(48)}`, /admin/i],
      ["an Anthropic admin key", "anthropic", () => `sk-ant-admin01-${randomToken(93)}AA`, /admin/i],
    ];

    it.each(cases)("refuses a key with %s, naming the problem but not the key", async (_name, provider, makeKey, reason) => {
      const caller = await newCaller(keyport);
      const apiKey = makeKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await createKey(keyport, caller, { provider, apiKey });
      const message = expectError(response, 400, "invalid_key_format");
      expect(message).toMatch(reason);
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(leakedFragments(keyport.logs.join("\n"), apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller, [apiKey])).toEqual(rejected(EMPTY_STATE, "create", "format_error"));
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("audits the refused attempt as key.rejected with the reason, never the key or its hint", async () => {
      const caller = await newCaller(keyport);
      const apiKey = `sk-proj-${random()} ${random()}`;
      expectError(await createKey(keyport, caller, { provider: "openai", apiKey }), 400, "invalid_key_format");
      const audit = await keyport.request("GET", "/api/v1/audit", { token: caller.token, headers: { "user-agent": "audit-check" } });
      expect(audit.body.events).toEqual([
        {
          id: expect.stringMatching(/^evt_/),
          type: "key.rejected",
          keyId: null,
          actor: caller.sub,
          ip: expect.any(String),
          userAgent: expect.any(String),
          detail: { operation: "create", provider: "openai", reason: "format_error", problem: expect.any(String), message: expect.stringMatching(/^apiKey: /) },
          createdAt: expect.any(String),
        },
      ]);
      expect(leakedFragments(audit.text, apiKey)).toEqual([]);
      expect(audit.text).not.toContain(apiKey.slice(-4));
    });

    it("refuses a malformed replacement secret and keeps the stored one", async () => {
      const caller = await newCaller(keyport);
      const { id } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      keyport.mock.clearRequests();
      const replacement = `sk-proj-${random()} ${random()}`;
      const response = await keyport.request("PUT", `/api/v1/api-keys/${id}/secret`, { token: caller.token, body: { apiKey: replacement } });
      expectError(response, 400, "invalid_key_format");
      expect(leakedFragments(response.text, replacement)).toEqual([]);
      expect(await stateOf(keyport, caller, [replacement])).toEqual(rejected(before, "replace", "format_error"));
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("trims leading and trailing ASCII whitespace and stores the trimmed key", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await createKey(keyport, caller, { provider: "openai", apiKey: ` \t\r\n${apiKey}\n\r\t ` });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({ provider: "openai", status: "valid", keyHint: `****...${apiKey.slice(-4)}` });
      expect(keyport.mock.requests().map((request) => request.headers.authorization)).toContain(`Bearer ${apiKey}`);
      // The trimmed key is what was stored: the bare key is now a duplicate of it.
      const again = await createKey(keyport, caller, { provider: "openai", apiKey });
      expect(expectError(again, 409, "duplicate_key")).toContain(response.body.id as string);
    });
  });

  describe("401 unauthenticated", () => {
    let victim: Caller;
    let id: string;
    let before: { keys: string; audit: string };
    let forged: string;
    let expired: string;

    beforeAll(async () => {
      victim = await newCaller(keyport);
      ({ id } = await storeValidKey(keyport, victim));
      before = await stateOf(keyport, victim);
      const now = Math.floor(Date.now() / 1000);
      forged = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(victim.sub)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(randomBytes(48));
      expired = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(victim.sub)
        .setIssuedAt(now - 7200)
        .setExpirationTime(now - 3600)
        .sign(new TextEncoder().encode(keyport.env.KEYPORT_JWT_SECRET));
    });

    const routes = (keyId: string): Array<[string, string, unknown]> => [
      ["POST", "/api/v1/api-keys", { provider: "openai", apiKey: openAiKey() }],
      ["GET", "/api/v1/api-keys", undefined],
      ["GET", `/api/v1/api-keys/${keyId}`, undefined],
      ["PATCH", `/api/v1/api-keys/${keyId}`, { label: "Taken over", isActive: false }],
      ["PUT", `/api/v1/api-keys/${keyId}/secret`, { apiKey: openAiKey() }],
      ["POST", `/api/v1/api-keys/${keyId}/test`, undefined],
      ["DELETE", `/api/v1/api-keys/${keyId}`, undefined],
      ["GET", "/api/v1/audit", undefined],
    ];
    const credentials: Array<[string, () => Record<string, string>]> = [
      ["no Authorization header", () => ({})],
      ["a Basic credential", () => ({ authorization: `Basic ${Buffer.from("user:password").toString("base64")}` })],
      ["a garbage bearer token", () => ({ authorization: "Bearer not-a-jwt" })],
      ["an empty bearer token", () => ({ authorization: "Bearer " })],
      ["a token signed with another secret", () => ({ authorization: `Bearer ${forged}` })],
      ["an expired token", () => ({ authorization: `Bearer ${expired}` })],
      ["a valid token in x-api-key only", () => ({ "x-api-key": victim.token })],
    ];

    it.each(credentials)("refuses %s on every route and changes nothing", async (_name, headersOf) => {
      for (const [method, route, body] of routes(id)) {
        const options: RequestOptions = { headers: headersOf(), ...(body === undefined ? {} : { body }) };
        const response = await keyport.request(method, route, options);
        expectError(response, 401, "unauthenticated");
        expect(response.text, `${method} ${route}`).not.toContain(victim.owner);
      }
      expect(await stateOf(keyport, victim)).toEqual(before);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it("answers 401, not 400 or 413, to an unauthenticated request with a bad body", async () => {
      const json = { "content-type": "application/json" };
      const attempts: Array<[string, string, RequestOptions]> = [
        ["POST", "/api/v1/api-keys", { body: { provider: 1, apiKey: 123, owner: victim.owner } }],
        ["POST", "/api/v1/api-keys", { rawBody: '{"provider":', headers: json }],
        ["POST", "/api/v1/api-keys", { body: { provider: "openai", apiKey: "sk-proj- spaced key" } }],
        ["POST", "/api/v1/api-keys", { body: { provider: "openai", apiKey: openAiKey(), label: "x".repeat(70_000) } }],
        ["PATCH", `/api/v1/api-keys/${id}`, { body: {} }],
        ["PATCH", `/api/v1/api-keys/${id}`, { rawBody: '{"isActive":', headers: json }],
        ["PUT", `/api/v1/api-keys/${id}/secret`, { body: { apiKey: 1 } }],
        ["PATCH", `/api/v1/api-keys/${id}`, { body: { label: "x" }, headers: { authorization: "Bearer garbage" } }],
      ];
      for (const [method, route, options] of attempts) {
        expectError(await keyport.request(method, route, options), 401, "unauthenticated");
      }
      expect(await stateOf(keyport, victim)).toEqual(before);
    });
  });

  describe("404 not_found", () => {
    it.each<[string, (id: string) => string, unknown]>([
      ["GET", (id) => `/api/v1/api-keys/${id}`, undefined],
      ["PATCH", (id) => `/api/v1/api-keys/${id}`, { label: "New" }],
      ["PUT", (id) => `/api/v1/api-keys/${id}/secret`, { apiKey: openAiKey() }],
      ["POST", (id) => `/api/v1/api-keys/${id}/test`, undefined],
      ["DELETE", (id) => `/api/v1/api-keys/${id}`, undefined],
    ])("%s on an unknown key id", async (method, routeOf, body) => {
      const caller = await newCaller(keyport);
      const { id: ownId } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      keyport.mock.clearRequests();
      const response = await keyport.request(method, routeOf(`key_${randomToken(20)}`), {
        token: caller.token,
        ...(body === undefined ? {} : { body }),
      });
      expectError(response, 404, "not_found");
      expect(response.text).not.toContain(ownId);
      expect(await stateOf(keyport, caller)).toEqual(before);
      expect(keyport.mock.requests()).toEqual([]);
    });

    it.each([
      ["GET", "/api/v1/nope"],
      ["GET", "/api/v1/api-keys/key_x/extra"],
      ["POST", "/api/v2/api-keys"],
      ["PUT", "/api/v1/api-keys"],
    ])("%s %s is an unknown route", async (method, route) => {
      const caller = await newCaller(keyport);
      expectError(await keyport.request(method, route, { token: caller.token }), 404, "not_found");
    });
  });

  describe("409 duplicate_key", () => {
    it("names the existing key's id and stores nothing more", async () => {
      const caller = await newCaller(keyport);
      const { id, apiKey } = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      const response = await createKey(keyport, caller, { provider: "openai", apiKey, label: "Again" });
      const message = expectError(response, 409, "duplicate_key");
      expect(message).toContain(id);
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller, [apiKey])).toEqual(rejected(before, "create", "duplicate"));
    });

    it("refuses a secret replacement that duplicates another stored key", async () => {
      const caller = await newCaller(keyport);
      const first = await storeValidKey(keyport, caller);
      const second = await storeValidKey(keyport, caller);
      const before = await stateOf(keyport, caller);
      const response = await keyport.request("PUT", `/api/v1/api-keys/${second.id}/secret`, {
        token: caller.token,
        body: { apiKey: first.apiKey },
      });
      expect(expectError(response, 409, "duplicate_key")).toContain(first.id);
      expect(await stateOf(keyport, caller, [first.apiKey])).toEqual(rejected(before, "replace", "duplicate"));
    });

    it("lets a different owner store the same key", async () => {
      const first = await newCaller(keyport);
      const second = await newCaller(keyport);
      const { id, apiKey } = await storeValidKey(keyport, first);
      const response = await createKey(keyport, second, { provider: "openai", apiKey });
      expect(response.status, response.text).toBe(201);
      expect(response.body.id).not.toBe(id);
    });
  });

  describe("422 key_rejected", () => {
    it.each([
      ["openai", () => `sk-proj-${randomToken(44)}Q7xZ`],
      ["anthropic", () => `sk-ant-api03-${randomToken(89)}Q7xZAA`],
    ] as const)("refuses a %s key the provider rejects and stores nothing", async (provider, makeKey) => {
      const caller = await newCaller(keyport);
      const apiKey = makeKey();
      keyport.mock.setKey(apiKey, "invalid");
      const response = await createKey(keyport, caller, { provider, apiKey });
      const message = expectError(response, 422, "key_rejected");
      expect(message).toMatch(/rejected/);
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
      expect(response.text).not.toContain(apiKey.slice(0, 8));
      expect(leakedFragments(keyport.logs.join("\n"), apiKey)).toEqual([]);
      expect(await stateOf(keyport, caller, [apiKey])).toEqual(rejected(EMPTY_STATE, "create", "provider_rejected"));
    });
  });

  describe("Idempotency-Key", () => {
    it("replays the first 201 for the same key and body, storing one key", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const headers = { "idempotency-key": `create-${randomToken(10)}` };
      const body = { provider: "openai", apiKey, label: "Once" };
      const first = await createKey(keyport, caller, body, headers);
      const second = await createKey(keyport, caller, body, headers);
      expect(first.status, first.text).toBe(201);
      expect(second.status, second.text).toBe(201);
      expect(second.body).toEqual(first.body);
      const state = await stateOf(keyport, caller);
      expect((JSON.parse(state.keys) as Array<{ id: string }>).map((key) => key.id)).toEqual([first.body.id]);
      const events = (JSON.parse(state.audit) as { events: Array<{ type: string }> }).events;
      expect(events.filter((event) => event.type === "key.created")).toHaveLength(1);
    });

    it("refuses the same Idempotency-Key with a different body", async () => {
      const caller = await newCaller(keyport);
      const firstKey = openAiKey();
      const secondKey = openAiKey();
      keyport.mock.setKey(firstKey, "valid");
      keyport.mock.setKey(secondKey, "valid");
      const headers = { "idempotency-key": `create-${randomToken(10)}` };
      expect((await createKey(keyport, caller, { provider: "openai", apiKey: firstKey }, headers)).status).toBe(201);
      const before = await stateOf(keyport, caller);
      for (const body of [
        { provider: "openai", apiKey: secondKey },
        { provider: "openai", apiKey: firstKey, label: "Different" },
        { provider: "openai", apiKey: firstKey, activate: false },
      ]) {
        const response = await createKey(keyport, caller, body, headers);
        expectError(response, 422, "idempotency_mismatch");
        expect(leakedFragments(response.text, secondKey)).toEqual([]);
      }
      expect(await stateOf(keyport, caller)).toEqual(before);
    });

    it("replays a 422 for a rejected key without calling the provider again", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "invalid");
      const headers = { "idempotency-key": `create-${randomToken(10)}` };
      const first = await createKey(keyport, caller, { provider: "openai", apiKey }, headers);
      const calls = keyport.mock.requests().length;
      const second = await createKey(keyport, caller, { provider: "openai", apiKey }, headers);
      expect(expectError(second, 422, "key_rejected")).toBe(expectError(first, 422, "key_rejected"));
      expect(keyport.mock.requests()).toHaveLength(calls);
      // The replay is a refused attempt too, though the provider is not asked again.
      const once = rejected(EMPTY_STATE, "create", "provider_rejected");
      expect(await stateOf(keyport, caller, [apiKey])).toEqual(rejected(once, "create", "provider_rejected"));
    });

    it("scopes Idempotency-Keys per owner", async () => {
      const first = await newCaller(keyport);
      const second = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const headers = { "idempotency-key": `shared-${randomToken(10)}` };
      const one = await createKey(keyport, first, { provider: "openai", apiKey }, headers);
      const two = await createKey(keyport, second, { provider: "openai", apiKey }, headers);
      expect([one.status, two.status]).toEqual([201, 201]);
      expect(two.body.id).not.toBe(one.body.id);
    });

    it.each([
      ["a space", "abc def"],
      ["a non-ASCII character", "clé-1"],
      ["over 255 characters", "k".repeat(256)],
    ])("refuses an Idempotency-Key with %s", async (_name, value) => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      const response = await createKey(keyport, caller, { provider: "openai", apiKey }, { "idempotency-key": value });
      expectError(response, 400, "invalid_request");
      expect(await stateOf(keyport, caller)).toEqual(EMPTY_STATE);
      expect(keyport.mock.requests()).toEqual([]);
    });
  });

  describe("status on create", () => {
    it.each([
      ["openai", openAiKey],
      ["anthropic", anthropicKey],
    ] as const)("stores a %s key without credit as no_credits, not active", async (provider, makeKey) => {
      const caller = await newCaller(keyport);
      const apiKey = makeKey();
      keyport.mock.setKey(apiKey, "no_credits");
      const response = await createKey(keyport, caller, { provider, apiKey });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({ provider, status: "no_credits", isActive: false, statusDetail: expect.any(String) });
      expect(leakedFragments(response.text, apiKey)).toEqual([]);
    });

    it.each([
      ["openai", openAiKey],
      ["anthropic", anthropicKey],
    ] as const)("stores a rate-limited %s key as unverified", async (provider, makeKey) => {
      const caller = await newCaller(keyport);
      const apiKey = makeKey();
      keyport.mock.setKey(apiKey, "rate_limited");
      const response = await createKey(keyport, caller, { provider, apiKey });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({ provider, status: "unverified", isActive: true, statusDetail: expect.any(String) });
    });

    it("stores a key as unverified when the connection to the provider is reset", async () => {
      const caller = await newCaller(keyport);
      const apiKey = openAiKey();
      keyport.mock.setKey(apiKey, "valid");
      keyport.mock.injectFault({ kind: "reset", match: { key: apiKey } });
      const response = await createKey(keyport, caller, { provider: "openai", apiKey });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({ status: "unverified", statusDetail: expect.any(String) });
      expect(response.text).not.toContain(keyport.mock.url);
    });
  });
});

describe("with KEYPORT_ON_REJECTED_KEY=store", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_ON_REJECTED_KEY: "store" } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("stores a rejected key as invalid with a statusDetail that quotes no part of it", async () => {
    const caller = await newCaller(keyport);
    const apiKey = `sk-proj-${randomToken(44)}Q7xZ`;
    keyport.mock.setKey(apiKey, "invalid");
    const response = await createKey(keyport, caller, { provider: "openai", apiKey });
    expect(response.status, response.text).toBe(201);
    expect(response.body).toMatchObject({ status: "invalid", isActive: false, statusDetail: expect.stringMatching(/Incorrect API key/) });
    const detail = response.body.statusDetail as string;
    expect(leakedFragments(detail, apiKey)).toEqual([]);
    expect(detail).not.toContain(apiKey.slice(0, 8));
    expect(detail).not.toContain("Q7xZ");
    const audit = await keyport.request("GET", "/api/v1/audit", { token: caller.token });
    expect(leakedFragments(audit.text, apiKey.slice(0, -4))).toEqual([]);
  });
});

describe("with the provider unreachable", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport({
      env: { OPENAI_BASE_URL: await closedPortUrl("/v1"), ANTHROPIC_BASE_URL: await closedPortUrl("") },
    });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it.each([
    ["openai", openAiKey],
    ["anthropic", anthropicKey],
  ] as const)("stores a %s key as unverified", async (provider, makeKey) => {
    const caller = await newCaller(keyport);
    const response = await createKey(keyport, caller, { provider, apiKey: makeKey() });
    expect(response.status, response.text).toBe(201);
    expect(response.body).toMatchObject({ provider, status: "unverified", isActive: true, statusDetail: expect.stringMatching(/connect/i) });
    expect(response.text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
  });
});

describe("429 rate_limited with KEYPORT_KEY_CHECKS_PER_MINUTE=2", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_KEY_CHECKS_PER_MINUTE: "2" } });
  });
  afterAll(async () => {
    await keyport.close();
  });
  beforeEach(() => {
    keyport.mock.clearRequests();
  });

  function expectRateLimited(response: TestResponse): void {
    expectError(response, 429, "rate_limited");
    const retryAfter = Number(response.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  }

  it("refuses the third create of an owner within a minute; another owner is not affected", async () => {
    const caller = await newCaller(keyport);
    await storeValidKey(keyport, caller);
    await storeValidKey(keyport, caller);
    const before = await stateOf(keyport, caller);
    keyport.mock.clearRequests();
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    expectRateLimited(await createKey(keyport, caller, { provider: "openai", apiKey }));
    expect(await stateOf(keyport, caller, [apiKey])).toEqual(rejected(before, "create", "rate_limited"));
    expect(keyport.mock.requests()).toEqual([]);

    const other = await newCaller(keyport);
    expect((await createKey(keyport, other, { provider: "openai", apiKey })).status).toBe(201);
  });

  it("counts tests and secret replacements with creates", async () => {
    const tester = await newCaller(keyport);
    const { id } = await storeValidKey(keyport, tester);
    expect((await keyport.request("POST", `/api/v1/api-keys/${id}/test`, { token: tester.token })).status).toBe(200);
    const before = await stateOf(keyport, tester);
    keyport.mock.clearRequests();
    expectRateLimited(await keyport.request("POST", `/api/v1/api-keys/${id}/test`, { token: tester.token }));
    expect(await stateOf(keyport, tester)).toEqual(rejected(before, "test", "rate_limited"));
    expect(keyport.mock.requests()).toEqual([]);

    const rotator = await newCaller(keyport);
    const stored = await storeValidKey(keyport, rotator);
    const replacement = openAiKey();
    keyport.mock.setKey(replacement, "valid");
    const rotated = await keyport.request("PUT", `/api/v1/api-keys/${stored.id}/secret`, { token: rotator.token, body: { apiKey: replacement } });
    expect(rotated.status, rotated.text).toBe(200);
    const afterRotation = await stateOf(keyport, rotator);
    const another = openAiKey();
    keyport.mock.setKey(another, "valid");
    expectRateLimited(await keyport.request("PUT", `/api/v1/api-keys/${stored.id}/secret`, { token: rotator.token, body: { apiKey: another } }));
    expectRateLimited(await keyport.request("POST", `/api/v1/api-keys/${stored.id}/test`, { token: rotator.token }));
    const replaceRefused = rejected(afterRotation, "replace", "rate_limited");
    expect(await stateOf(keyport, rotator, [replacement, another])).toEqual(rejected(replaceRefused, "test", "rate_limited"));

    const bystander = await newCaller(keyport);
    const { id: bystanderKey } = await storeValidKey(keyport, bystander);
    expect((await keyport.request("POST", `/api/v1/api-keys/${bystanderKey}/test`, { token: bystander.token })).status).toBe(200);
  });
});
