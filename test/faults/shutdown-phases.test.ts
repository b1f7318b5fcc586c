import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import Database from "better-sqlite3";
import OpenAI, { type ClientOptions } from "openai";
import { Agent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { estimateTokensOfBytes } from "../../src/lib/usage.js";
import { cleanEnv, createCliRunner, createTempDirs, isListening } from "../cli/cli-process.js";
import { anthropicThrough, openAiThrough, waitUntil } from "../gateway/gateway-clients.js";
import { startStallingUpstream, type StallingUpstream } from "../gateway/gateway-support.js";
import { anthropicKey, openAiKey } from "../support/keys.js";

/** Long enough for the checks made during the delay on a busy machine; nothing is timed against it. */
const DELAY_MS = 4_000;
const DRAIN_MS = 1_000;

type Received = { items: unknown[]; error: unknown };

/** Iterates a stream until it ends or throws; `onItem` sees each item as it arrives. */
async function collect(stream: AsyncIterable<unknown>, onItem: (item: unknown) => void): Promise<Received> {
  const items: unknown[] = [];
  try {
    for await (const item of stream) {
      items.push(item);
      onItem(item);
    }
    return { items, error: undefined };
  } catch (error) {
    return { items, error };
  }
}

/** `/readyz` on a connection of its own: its status, or the connection error's code. */
async function readyzOnNewConnection(url: string): Promise<number | string> {
  const pool = new Agent();
  try {
    const response = await undiciRequest(`${url}/readyz`, { dispatcher: pool });
    await response.body.text();
    return response.statusCode;
  } catch (error) {
    return (error as { code?: string }).code ?? "unknown";
  } finally {
    await pool.close();
  }
}

/**
 * A rolling update's SIGTERM against a real `keyport serve`: readiness fails first while new
 * connections are still accepted for the delay, then the listener closes, and two streams that
 * outlive the drain timeout (an upstream that never finishes) end with each provider's own error
 * event and are recorded as cut with what they streamed. Then the process exits 0.
 */
describe("shutdown phases (KEYPORT_SHUTDOWN_DELAY_MS, KEYPORT_DRAIN_TIMEOUT_MS)", () => {
  const runner = createCliRunner();
  const directories = createTempDirs("keyport-shutdown-phases-");
  let upstream: StallingUpstream;

  beforeAll(async () => {
    upstream = await startStallingUpstream();
  });
  afterAll(async () => {
    await runner.killAll();
    await upstream.close();
    directories.removeAll();
  });

  it("fails readiness while accepting, then refuses connections, cuts the streams at the drain deadline with a provider-shaped error and records them", { timeout: 90_000 }, async () => {
    const dataDir = directories.make();
    const jwtSecret = randomBytes(48).toString("base64url");
    const keyport = runner.start(["serve"], {
      cwd: dataDir,
      env: cleanEnv({
        NODE_ENV: "test",
        PORT: "0",
        KEYPORT_DATA_DIR: dataDir,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        KEYPORT_JWT_SECRET: jwtSecret,
        PLATFORM_OPENAI_API_KEY: openAiKey(),
        PLATFORM_ANTHROPIC_API_KEY: anthropicKey(),
        OPENAI_BASE_URL: `${upstream.url}/v1`,
        ANTHROPIC_BASE_URL: upstream.url,
        KEYPORT_SHUTDOWN_DELAY_MS: String(DELAY_MS),
        KEYPORT_DRAIN_TIMEOUT_MS: String(DRAIN_MS),
        LOG_LEVEL: "info",
      }),
    });
    const [, url] = await keyport.waitFor(/Keyport is running at (http:\/\/[^\s]+)/);
    if (url === undefined) throw new Error("no address in the banner");
    const port = Number(new URL(url).port);
    const token = await signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub: "phases-user", tier: "premium" });
    expect(await readyzOnNewConnection(url)).toBe(200);

    // Two streams that send their first words and then never finish.
    let openAiStarted = false;
    let anthropicStarted = false;
    const openAiStream = await openAiThrough(url, token).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "a stream longer than the drain" }],
      stream: true,
    });
    const anthropicStream = await anthropicThrough(url, token).messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "a stream longer than the drain" }],
      stream: true,
    });
    const openAiReceived = collect(openAiStream, (chunk) => {
      if ((chunk as OpenAI.ChatCompletionChunk).choices[0]?.delta.content === "Hello") openAiStarted = true;
    });
    const anthropicReceived = collect(anthropicStream, (event) => {
      if ((event as Anthropic.RawMessageStreamEvent).type === "content_block_delta") anthropicStarted = true;
    });
    await waitUntil(() => openAiStarted && anthropicStarted, "both streams have their first word");
    // And a plain call whose answer never comes.
    const waitingPool = new Agent();
    const waitingClient = new OpenAI({
      baseURL: `${url}/openai/v1`,
      apiKey: token,
      maxRetries: 0,
      fetchOptions: { dispatcher: waitingPool } as unknown as NonNullable<ClientOptions["fetchOptions"]>,
    });
    const waiting = waitingClient.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "never answer" }] })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    await waitUntil(() => upstream.calls.length === 3, "the plain call reached the provider");

    expect(keyport.child.kill("SIGTERM")).toBe(true);
    await keyport.waitFor(/"msg":"not ready; still accepting during the shutdown delay"/);
    // The delay: not ready, yet a new connection is accepted and a call on it is served (and
    // told to close its connection, so the client reconnects elsewhere).
    expect(await readyzOnNewConnection(url)).toBe(503);
    const pool = new Agent();
    try {
      const fetchOptions = { dispatcher: pool } as unknown as NonNullable<ClientOptions["fetchOptions"]>;
      const client = new OpenAI({ baseURL: `${url}/openai/v1`, apiKey: token, maxRetries: 0, fetchOptions });
      const { data, response } = await client.chat.completions
        .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "during the delay" }] })
        .withResponse();
      expect(data.choices[0]?.message.content).toBe("Now");
      expect(response.headers.get("connection")).toBe("close");
    } finally {
      await pool.close();
    }
    expect(keyport.stdout()).not.toMatch(/no longer accepting connections/);

    // After the delay: the listener is closed.
    await keyport.waitFor(/"msg":"no longer accepting connections; draining"/, { timeoutMs: DELAY_MS + 30_000 });
    await waitUntil(async () => !(await isListening(port)), "the listener is closed");
    expect(await readyzOnNewConnection(url)).toMatch(/^E/);

    // The drain deadline: each stream ends with its provider's own error event, not a bare close.
    const openAi = await openAiReceived;
    expect(openAi.items.length).toBe(2);
    expect(openAi.error).toBeInstanceOf(OpenAI.APIError);
    expect(openAi.error).not.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(openAi.error).toMatchObject({ error: { type: "server_error", code: "shutting_down" } });
    const anthropic = await anthropicReceived;
    expect(anthropic.items.map((event) => (event as { type: string }).type)).toEqual(["message_start", "content_block_start", "content_block_delta"]);
    expect(anthropic.error).toBeInstanceOf(Anthropic.APIError);
    expect(anthropic.error).not.toBeInstanceOf(Anthropic.APIConnectionError);
    expect(anthropic.error).toMatchObject({ error: { type: "error", error: { type: "overloaded_error" } } });

    // The plain call loses its connection (nothing can be said in a body that has not started).
    expect(await waiting).toBeInstanceOf(OpenAI.APIConnectionError);
    await waitingPool.close();

    const exit = await keyport.waitForExit(30_000);
    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    expect(exit.stdout).toMatch(/"cutStreams":2/);
    expect(exit.stdout).not.toMatch(/shutdown failed|Usage records lost|shutdown deadline passed/);
    // Every record was committed, so the usage journal is gone: nothing for the next start to replay.
    expect(existsSync(path.join(dataDir, "usage-journal"))).toBe(false);

    // Recorded as cut, with what was streamed: one word each; OpenAI's input estimated from the request.
    // The first chat call is the stream (the one during the delay came later).
    const [chatCall, messagesCall] = [upstream.calls.find((call) => call.path === "/v1/chat/completions"), upstream.calls.find((call) => call.path === "/v1/messages")];
    const chatInput = estimateTokensOfBytes(await (chatCall?.bodyBytes ?? Promise.resolve(0)));
    expect(messagesCall).toBeDefined();
    const database = new Database(path.join(dataDir, "keyport.db"), { readonly: true });
    try {
      const rows = database
        .prepare("select provider, status, input_tokens as inputTokens, output_tokens as outputTokens, cost_nano_usd as cost, streamed from usage_records order by provider, status, streamed")
        .all() as { provider: string; status: string; inputTokens: number | null; outputTokens: number | null; cost: number | null; streamed: number }[];
      expect(rows.map(({ cost: _cost, ...row }) => row)).toEqual([
        { provider: "anthropic", status: "shutdown_cut", inputTokens: upstream.anthropicInputTokens, outputTokens: 1, streamed: 1 },
        // The call served during the delay.
        { provider: "openai", status: "ok", inputTokens: 5, outputTokens: 1, streamed: 0 },
        // The plain call still waiting at the deadline: cut by the shutdown, nothing known of its usage.
        { provider: "openai", status: "shutdown_cut", inputTokens: null, outputTokens: null, streamed: 0 },
        { provider: "openai", status: "shutdown_cut", inputTokens: chatInput, outputTokens: 1, streamed: 1 },
      ]);
      expect(rows.filter((row) => row.streamed === 1 || row.status === "ok").every((row) => row.cost !== null && row.cost > 0)).toBe(true);
    } finally {
      database.close();
    }
  });
});
