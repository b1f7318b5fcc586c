import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { inspect } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import { SignJWT } from "jose";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { anthropicThrough, headersText, inferenceCalls, openAiThrough, upstreamKeyOf } from "../gateway/gateway-clients.js";
import { startKeyport, type Dialect, type TestKeyport } from "../support/harness.js";
import { randomToken } from "../support/keys.js";
import { createTestSchemaName, describePostgres, dropTestSchema } from "../support/postgres.js";

const OPENAI_MODEL = "gpt-4o-mini";
const ANTHROPIC_MODEL = "claude-haiku-4-5";
const CHAT_PATH = "/v1/chat/completions";
const MESSAGES_PATH = "/v1/messages";

/**
 * The canary, through the gateway: unique provider keys (the owner's own, for OpenAI and
 * Anthropic, and the platform's) serve real calls — plain and streamed, a key the provider
 * revokes, a 500 that is retried, a provider that does not answer in time, bad tokens, and the
 * key itself sent as the token. With every log line captured at trace level, afterwards no log
 * line, no response (body or header), no error the SDKs raised and no stored byte contains any
 * of the keys or a 16-character piece of one; and the caller's JWT never reached the provider.
 */
function gatewayCanary(dialect: Dialect, postgresUrl?: string) {
  const schema = dialect === "postgres" ? createTestSchemaName() : undefined;
  const canaries: string[] = [];
  /** Everything a client saw: bodies, stream chunks, headers, SDK errors. */
  const seen: string[] = [];
  /** Every JWT a client sent. */
  const tokens: string[] = [];
  let keyport: TestKeyport;

  function canary(prefix: string): string {
    const key = `${prefix}CANARY${randomToken(40)}${prefix.startsWith("sk-ant-") ? "AA" : ""}`;
    canaries.push(key);
    return key;
  }

  const platformOpenAiKey = canary("sk-proj-");
  const platformAnthropicKey = canary("sk-ant-api03-");
  const ownOpenAiKey = canary("sk-proj-");
  const ownAnthropicKey = canary("sk-ant-api03-");
  const neverStoredKey = canary("sk-proj-");

  beforeAll(async () => {
    keyport = await startKeyport({
      dialect,
      ...(schema === undefined ? {} : { postgresSchema: schema }),
      env: {
        LOG_LEVEL: "trace",
        PLATFORM_OPENAI_API_KEY: platformOpenAiKey,
        PLATFORM_ANTHROPIC_API_KEY: platformAnthropicKey,
        KEYPORT_UPSTREAM_RETRIES: "1",
        KEYPORT_UPSTREAM_HEADERS_TIMEOUT_MS: "1000",
      },
    });
    for (const key of [platformOpenAiKey, platformAnthropicKey, ownOpenAiKey, ownAnthropicKey]) keyport.mock.setKey(key, "valid");
  });
  afterAll(async () => {
    await keyport?.close();
    if (schema !== undefined && postgresUrl !== undefined) await dropTestSchema(postgresUrl, schema);
  });

  /** Runs a call that must fail, keeping everything the SDK put into its error. */
  async function failure(call: () => Promise<unknown>): Promise<unknown> {
    try {
      await call();
    } catch (error) {
      seen.push(String(error), inspect(error, { depth: 8 }));
      if (error instanceof OpenAI.APIError || error instanceof Anthropic.APIError) {
        seen.push(JSON.stringify(error.error) ?? "", headersText(error.headers));
      }
      return error;
    }
    throw new Error("the call was expected to fail");
  }

  async function openAiChat(token: string, content: string) {
    const { data, response } = await openAiThrough(keyport.url, token)
      .chat.completions.create({ model: OPENAI_MODEL, messages: [{ role: "user", content }] })
      .withResponse();
    seen.push(JSON.stringify(data), headersText(response.headers));
    expect(data.choices[0]?.message.content).toBe(`Mock reply: ${content}`);
    return response.headers.get("x-keyport-key-source");
  }

  async function openAiStream(token: string, content: string) {
    const { data: stream, response } = await openAiThrough(keyport.url, token)
      .chat.completions.create({ model: OPENAI_MODEL, messages: [{ role: "user", content }], stream: true })
      .withResponse();
    seen.push(headersText(response.headers));
    let text = "";
    for await (const chunk of stream) {
      seen.push(JSON.stringify(chunk));
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(`Mock reply: ${content}`);
    return response.headers.get("x-keyport-key-source");
  }

  async function anthropicMessage(token: string, content: string) {
    const { data, response } = await anthropicThrough(keyport.url, token)
      .messages.create({ model: ANTHROPIC_MODEL, max_tokens: 64, messages: [{ role: "user", content }] })
      .withResponse();
    seen.push(JSON.stringify(data), headersText(response.headers));
    expect(data.content[0]?.type === "text" ? data.content[0].text : undefined).toBe(`Mock reply: ${content}`);
    return response.headers.get("x-keyport-key-source");
  }

  async function anthropicStream(token: string, content: string) {
    const { data: stream, response } = await anthropicThrough(keyport.url, token)
      .messages.create({ model: ANTHROPIC_MODEL, max_tokens: 64, messages: [{ role: "user", content }], stream: true })
      .withResponse();
    seen.push(headersText(response.headers));
    let text = "";
    for await (const event of stream) {
      seen.push(JSON.stringify(event));
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    expect(text).toBe(`Mock reply: ${content}`);
    return response.headers.get("x-keyport-key-source");
  }

  /** A raw request, for what the SDKs would not show (and to send what they would not). */
  async function raw(route: string, headers: Record<string, string>, body: unknown) {
    const response = await fetch(`${keyport.url}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    seen.push(text, headersText(response.headers));
    return { status: response.status, text };
  }

  /** Keys the mock saw on inference calls to `path` from position `since` on. */
  const keysSeen = (path: string, since: number) =>
    inferenceCalls(keyport.mock, since)
      .filter((request) => request.path === path)
      .map(upstreamKeyOf);

  it("keeps every provider key out of logs, responses, errors and storage, and the JWT away from the provider", async () => {
    const token = await keyport.token("gateway-canary", { tier: "premium" });
    tokens.push(token);

    // The owner's own keys, through the management API.
    const keyIds: Record<"openai" | "anthropic", string> = { openai: "", anthropic: "" };
    for (const [provider, apiKey] of [
      ["openai", ownOpenAiKey],
      ["anthropic", ownAnthropicKey],
    ] as const) {
      const created = await keyport.request("POST", "/api/v1/api-keys", { token, body: { provider, apiKey } });
      seen.push(created.text, headersText(created.headers));
      expect(created.status, created.text).toBe(201);
      expect(created.body.isActive).toBe(true);
      keyIds[provider] = created.body.id as string;
    }

    // Success, plain and streamed, on both providers, with the owner's keys.
    let mark = keyport.mock.requests().length;
    expect(await openAiChat(token, "plain openai call")).toBe("byok");
    expect(await openAiStream(token, "streamed openai call")).toBe("byok");
    expect(await anthropicMessage(token, "plain anthropic call")).toBe("byok");
    expect(await anthropicStream(token, "streamed anthropic call")).toBe("byok");
    expect(keysSeen(CHAT_PATH, mark)).toEqual([ownOpenAiKey, ownOpenAiKey]);
    expect(keysSeen(MESSAGES_PATH, mark)).toEqual([ownAnthropicKey, ownAnthropicKey]);

    // A 500 is retried with the same key, invisibly to the client.
    mark = keyport.mock.requests().length;
    keyport.mock.injectFault({ kind: "status", status: 500, match: { path: CHAT_PATH, key: ownOpenAiKey } });
    keyport.mock.injectFault({ kind: "status", status: 500, match: { path: MESSAGES_PATH, key: ownAnthropicKey } });
    expect(await openAiChat(token, "retried openai call")).toBe("byok");
    expect(await anthropicStream(token, "retried anthropic stream")).toBe("byok");
    expect(keysSeen(CHAT_PATH, mark)).toEqual([ownOpenAiKey, ownOpenAiKey]);
    expect(keysSeen(MESSAGES_PATH, mark)).toEqual([ownAnthropicKey, ownAnthropicKey]);

    // The provider does not answer in time, on every attempt: 504 in the provider's shape.
    keyport.mock.injectFault({ kind: "delay", ms: 10_000, times: 2, match: { path: CHAT_PATH, key: ownOpenAiKey } });
    const openAiTimeout = await failure(() => openAiChat(token, "slow openai call"));
    expect(openAiTimeout).toBeInstanceOf(OpenAI.APIError);
    expect((openAiTimeout as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    keyport.mock.injectFault({ kind: "delay", ms: 10_000, times: 2, match: { path: MESSAGES_PATH, key: ownAnthropicKey } });
    const anthropicTimeout = await failure(() => anthropicStream(token, "slow anthropic stream"));
    expect(anthropicTimeout).toBeInstanceOf(Anthropic.APIError);
    expect((anthropicTimeout as InstanceType<typeof Anthropic.APIError>).status).toBe(504);

    // The provider revokes both keys: marked invalid, and the call falls back to the platform key.
    mark = keyport.mock.requests().length;
    keyport.mock.setKey(ownOpenAiKey, "invalid");
    keyport.mock.setKey(ownAnthropicKey, "invalid");
    expect(await openAiChat(token, "revoked openai key")).toBe("platform");
    expect(await anthropicStream(token, "revoked anthropic key")).toBe("platform");
    expect(keysSeen(CHAT_PATH, mark)).toEqual([ownOpenAiKey, platformOpenAiKey]);
    expect(keysSeen(MESSAGES_PATH, mark)).toEqual([ownAnthropicKey, platformAnthropicKey]);
    for (const id of Object.values(keyIds)) {
      const key = await keyport.request("GET", `/api/v1/api-keys/${id}`, { token });
      seen.push(key.text, headersText(key.headers));
      expect(key.body.status).toBe("invalid");
    }
    // Platform traffic from now on, plain and streamed.
    expect(await openAiStream(token, "platform openai stream")).toBe("platform");
    expect(await anthropicMessage(token, "platform anthropic call")).toBe("platform");
    const audit = await keyport.request("GET", "/api/v1/audit", { token });
    seen.push(audit.text);
    expect(audit.status).toBe(200);

    // Tokens Keyport must refuse: not a JWT, signed with another secret, expired.
    const foreignToken = await signDevToken({ secret: redacted(randomBytes(48).toString("base64url")), algorithm: "HS256", sub: "gateway-canary", tier: "premium" });
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    const expiredToken = await new SignJWT({ tier: "premium" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("gateway-canary")
      .setIssuedAt(hourAgo - 60)
      .setExpirationTime(hourAgo)
      .sign(new TextEncoder().encode(keyport.env.KEYPORT_JWT_SECRET));
    tokens.push(foreignToken, expiredToken);
    mark = keyport.mock.requests().length;
    for (const badToken of ["not-a-jwt", foreignToken, expiredToken]) {
      expect(await failure(() => openAiChat(badToken, "bad token"))).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(await failure(() => anthropicMessage(badToken, "bad token"))).toBeInstanceOf(Anthropic.AuthenticationError);
    }

    // A provider key sent where the JWT goes: refused, and not echoed.
    for (const key of [ownOpenAiKey, platformOpenAiKey, neverStoredKey]) {
      expect(await failure(() => openAiChat(key, "key as token"))).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(await failure(() => openAiStream(key, "key as token"))).toBeInstanceOf(OpenAI.AuthenticationError);
    }
    for (const key of [ownAnthropicKey, platformAnthropicKey]) {
      expect(await failure(() => anthropicMessage(key, "key as token"))).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(await failure(() => anthropicStream(key, "key as token"))).toBeInstanceOf(Anthropic.AuthenticationError);
    }
    const chatBody = { model: OPENAI_MODEL, messages: [{ role: "user", content: "raw" }] };
    expect((await raw("/openai/v1/chat/completions", { authorization: `Bearer ${neverStoredKey}` }, chatBody)).status).toBe(401);
    expect((await raw("/v1/chat/completions", { authorization: `Bearer ${platformOpenAiKey}` }, chatBody)).status).toBe(401);
    const messagesBody = { model: ANTHROPIC_MODEL, max_tokens: 16, messages: [{ role: "user", content: "raw" }] };
    expect((await raw("/anthropic/v1/messages", { "x-api-key": ownAnthropicKey, "anthropic-version": "2023-06-01" }, messagesBody)).status).toBe(401);
    // Two different credentials at once are ambiguous: refused too.
    expect((await raw("/v1/messages", { authorization: `Bearer ${token}`, "x-api-key": platformAnthropicKey }, messagesBody)).status).toBe(401);
    expect(keyport.mock.requests().slice(mark)).toEqual([]);

    // The checks below look at real output: trace lines were written, the keys reached the provider.
    expect(keyport.config.logLevel).toBe("trace");
    for (const status of [200, 401, 504]) {
      expect(keyport.logs.some((line) => line.includes('"route":"/openai/v1/chat/completions"') && line.includes(`"status":${status}`))).toBe(true);
    }
    const upstreamKeys = new Set(inferenceCalls(keyport.mock).map(upstreamKeyOf));
    for (const key of [platformOpenAiKey, platformAnthropicKey, ownOpenAiKey, ownAnthropicKey]) expect(upstreamKeys.has(key)).toBe(true);

    const places: Record<string, string> = {
      "log lines": keyport.logs.join("\n"),
      "responses and SDK errors": seen.join("\n"),
      "stored bytes": await storedText(keyport, dialect, schema),
    };
    const leaks: string[] = [];
    for (const key of canaries) {
      for (const fragment of fragmentsOf(key)) {
        for (const [place, text] of Object.entries(places)) {
          const at = text.indexOf(fragment);
          // Where it leaked, with the fragment itself blanked out of the report.
          if (at !== -1) leaks.push(`${place}: …${text.slice(Math.max(0, at - 80), at)}<canary>${text.slice(at + fragment.length, at + fragment.length + 80)}…`);
        }
      }
    }
    expect(leaks).toEqual([]);

    // The caller's JWT stays between the caller and Keyport.
    const upstream = JSON.stringify(keyport.mock.requests());
    for (const jwt of tokens) {
      const signature = jwt.slice(jwt.lastIndexOf(".") + 1);
      expect(upstream.includes(jwt) || upstream.includes(signature), "a JWT in a request to the provider").toBe(false);
      expect(places["log lines"]?.includes(signature), "a JWT in a log line").toBe(false);
    }
  });
}

/** The key, and every 16-character piece of it from the `CANARY` marker on (half a key is a leak). */
function fragmentsOf(key: string): string[] {
  const body = key.slice(key.indexOf("CANARY"));
  const fragments = [key];
  for (let start = 0; start + 16 <= body.length; start += 1) fragments.push(body.slice(start, start + 16));
  return fragments;
}

/** Every byte Keyport stored: the SQLite file with its WAL, or every table of the test schema. */
async function storedText(keyport: TestKeyport, dialect: Dialect, schema: string | undefined): Promise<string> {
  if (dialect === "sqlite") {
    const file = path.join(keyport.dataDir, "keyport.db");
    const files = [file, `${file}-wal`, `${file}-shm`].filter((name) => existsSync(name));
    expect(files).toContain(file);
    return files.map((name) => readFileSync(name).toString("latin1")).join("\n");
  }
  if (schema === undefined) throw new Error("a PostgreSQL run needs its schema");
  const client = new pg.Client({ connectionString: keyport.env.DATABASE_URL });
  await client.connect();
  try {
    const tables = await client.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = $1", [schema]);
    expect(tables.rows.map((row) => row.table_name)).toEqual(expect.arrayContaining(["provider_keys", "data_keys", "audit_events", "usage_records"]));
    const texts: string[] = [];
    for (const { table_name: table } of tables.rows) {
      const rows = await client.query<{ row: string }>(`select row_to_json(t)::text as row from "${schema}"."${table}" t`);
      texts.push(...rows.rows.map((value) => value.row));
    }
    return texts.join("\n");
  } finally {
    await client.end();
  }
}

describe("gateway canary on SQLite", () => gatewayCanary("sqlite"));
await describePostgres("gateway canary on PostgreSQL", (url) => gatewayCanary("postgres", url));
