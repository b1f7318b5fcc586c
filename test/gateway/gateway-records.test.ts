import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../src/config/tiers.js";
import {
  anthropicVia,
  auditTypes,
  createUsers,
  type GatewayKeyport,
  keyView,
  openAiVia,
  startGateway,
  storeKey,
  type TestUser,
  upstreamRequests,
  waitForUsage,
} from "./gateway-support.js";

function chatBody(user: TestUser) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

function messagesBody(user: TestUser) {
  return { model: "claude-haiku-4-5", max_tokens: 32, messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

/** A URL on which nothing listens: connections are refused before any byte is sent. */
async function closedPortUrl(suffix: string): Promise<string> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${suffix}`;
}

/** An OpenAI stand-in whose chat answers send their headers and half a JSON body, then stall. */
async function startHalfAnswerUpstream(): Promise<{ url: string; closed: Promise<void>[]; close(): Promise<void> }> {
  const closed: Promise<void>[] = [];
  const open = new Set<ServerResponse>();
  const server = createHttpServer((request, response) => {
    request.resume();
    open.add(response);
    closed.push(new Promise((resolve) => response.on("close", () => resolve())));
    response.on("close", () => open.delete(response));
    response.writeHead(200, { "content-type": "application/json" });
    response.write('{"id":"chatcmpl-half","object":"chat.completion","model":"gpt-4o-mini","choices":[');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    closed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of open) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Resolves when `promise` does, or fails after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("usage records say what happened", () => {
  describe("a client that gives up on a plain (not streamed) call", () => {
    let upstream: Awaited<ReturnType<typeof startHalfAnswerUpstream>>;
    let keyport: GatewayKeyport;
    let newUser: (tier: string) => Promise<TestUser>;

    beforeAll(async () => {
      upstream = await startHalfAnswerUpstream();
      keyport = await startGateway({ env: { OPENAI_BASE_URL: `${upstream.url}/v1` } });
      newUser = createUsers(keyport, "records-abort");
    });
    afterAll(async () => {
      await keyport.close();
      await upstream.close();
    });

    it("is recorded as client_aborted, not partial (which means the provider cut it off), and the upstream request is let go", async () => {
      const user = await newUser("community");
      const controller = new AbortController();
      const calls = upstream.closed.length;
      const pending = openAiVia(keyport, user.token).chat.completions.create(chatBody(user), { signal: controller.signal });
      // The headers are relayed at once; the body never completes.
      await within(
        (async () => {
          while (upstream.closed.length === calls) await new Promise((resolve) => setTimeout(resolve, 10));
        })(),
        5_000,
        "the upstream saw the call",
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      controller.abort();
      expect(await pending.catch((error: unknown) => error)).toBeInstanceOf(OpenAI.APIUserAbortError);
      const upstreamClosed = upstream.closed[calls];
      if (upstreamClosed === undefined) throw new Error("no upstream call");
      await within(upstreamClosed, 5_000, "the upstream request was closed");

      const records = await waitForUsage(keyport, user.owner, 1);
      expect(records.map((record) => [record.status, record.streamed, record.source, record.tier])).toEqual([["client_aborted", false, "platform", "community"]]);
    });
  });

  describe("a provider that refuses the connection", () => {
    let keyport: GatewayKeyport;
    let newUser: (tier: string) => Promise<TestUser>;

    beforeAll(async () => {
      keyport = await startGateway({ env: { OPENAI_BASE_URL: await closedPortUrl("/v1"), KEYPORT_UPSTREAM_RETRIES: "1" } });
      newUser = createUsers(keyport, "records-refused");
    });
    afterAll(async () => {
      await keyport.close();
    });

    it("gets a 502, and no usage record: nothing reached the provider, so nothing can be billed", async () => {
      const user = await newUser("community");
      const failure = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).catch((error: unknown) => error);
      expect(failure).toMatchObject({ status: 502, error: { code: "upstream_error" } });
      // A later call of the same owner (Anthropic still answers) is recorded, so anything queued before it is stored too.
      await anthropicVia(keyport, user.token).messages.create(messagesBody(user));
      const records = await waitForUsage(keyport, user.owner, 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const settled = await waitForUsage(keyport, user.owner, 1);
      expect(settled.map((record) => [record.provider, record.status])).toEqual([["anthropic", "ok"]]);
      expect(records).toHaveLength(1);
    });
  });

  describe("after a fallback", () => {
    const TIERS = { ...DEFAULT_TIERS, noplatform: { requestsPerMinute: 0, requestsPerDay: 0, byokAllowed: true } };
    let keyport: GatewayKeyport;
    let newUser: (tier: string) => Promise<TestUser>;

    beforeAll(async () => {
      keyport = await startGateway({ env: { KEYPORT_TIERS: JSON.stringify(TIERS) } });
      newUser = createUsers(keyport, "records-fallback");
    });
    afterAll(async () => {
      await keyport.close();
    });

    it("the record names the key that actually reached the provider, not the platform key the limiter then refused", async () => {
      const user = await newUser("noplatform");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.setKey(key.apiKey, "invalid");
      const failure = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).catch((error: unknown) => error);
      expect(failure).toMatchObject({ status: 429, error: { code: "rate_limit_exceeded" } });
      expect(upstreamRequests(keyport.mock, { marker: user.marker }).map((request) => request.headers.authorization)).toEqual([`Bearer ${key.apiKey}`]);

      const records = await waitForUsage(keyport, user.owner, 1);
      // The caller's tier, whichever key served the call.
      expect(records.map((record) => [record.source, record.keyId, record.status, record.httpStatus, record.tier])).toEqual([["byok", key.id, "error", 429, "noplatform"]]);
    });

    it("the record names the platform key when the platform key served the retried call", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.setKey(key.apiKey, "invalid");
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      const records = await waitForUsage(keyport, user.owner, 1);
      expect(records.map((record) => [record.source, record.keyId, record.status, record.tier])).toEqual([["platform", null, "ok", "premium"]]);
    });
  });
});

describe("a key revoked while many calls are in flight on it", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;

  beforeAll(async () => {
    keyport = await startGateway();
    newUser = createUsers(keyport, "revoked");
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("changes status once and writes one key.invalidated and one fallback event, however many calls saw the 401", async () => {
    const user = await newUser("premium");
    const key = await storeKey(keyport, user, "openai");
    // Warm the key cache with the key still valid, so every concurrent call picks it.
    await openAiVia(keyport, user.token).chat.completions.create(chatBody(user));
    keyport.mock.setKey(key.apiKey, "invalid");
    // Each 401 is held back a little, so all the calls are in flight on the key before the first status change.
    keyport.mock.injectFault({ kind: "delay", ms: 1_000, times: 30, match: { key: key.apiKey } });

    const calls = 30;
    const answers = await Promise.all(
      Array.from({ length: calls }, () => openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse()),
    );
    keyport.mock.clearFaults();
    expect(answers.every(({ response }) => response.headers.get("x-keyport-key-source") === "platform")).toBe(true);
    // Most calls (timing decides exactly how many) went out on the key before the first 401 came back.
    expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker }).length).toBeGreaterThan(10);

    expect(await keyView(keyport, user, key.id)).toMatchObject({ status: "invalid" });
    const types = await auditTypes(keyport, user);
    expect(types.filter((type) => type === "key.invalidated")).toHaveLength(1);
    expect(types.filter((type) => type === "key.fell_back_to_platform")).toHaveLength(1);
  });
});
