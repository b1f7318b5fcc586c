import { randomBytes } from "node:crypto";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import OpenAI, { type ClientOptions } from "openai";
import { Agent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { redacted } from "../../src/lib/redacted.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import type { MockProvider } from "../../src/mock-provider/types.js";
import { cleanEnv, createCliRunner, createTempDirs } from "../cli/cli-process.js";
import { openAiKey } from "../support/keys.js";
import { inferenceCalls, upstreamKeyOf, waitUntil } from "./gateway-clients.js";

const STREAMS = 20;

/**
 * How long Keyport may take to exit once its last stream has ended. Nothing is left to do then
 * but flush a few records, so this only tells a hang from a stop (Keyport's own deadline is 30 s).
 */
const EXIT_AFTER_LAST_STREAM_MS = 10_000;

/** One finished stream as the client saw it. */
type StreamResult = { index: number; source: string | null; text: string; lastFinishReason: string | null | undefined; sawDone: boolean };

/**
 * Keyport as a real process (`keyport serve`, the build in dist/): SIGTERM while 20 streamed
 * completions wait on a slow provider. Every stream must finish whole, every call must be in the
 * database, the process must exit 0, and nothing new may be served once the signal has arrived.
 */
describe("gateway graceful shutdown (SIGTERM during 20 in-flight streams)", () => {
  const runner = createCliRunner();
  const directories = createTempDirs("keyport-shutdown-");
  let mock: MockProvider;

  beforeAll(async () => {
    // Slow enough that every stream is still waiting for its first event when the signal comes.
    mock = await startMockProvider({ latencyMs: 1500, acceptUnknownKeys: true });
  });
  afterAll(async () => {
    await runner.killAll();
    await mock.close();
    directories.removeAll();
  });

  it("finishes every stream, records every call, refuses new work and exits 0", { timeout: 90_000 }, async () => {
    const dataDir = directories.make();
    const jwtSecret = randomBytes(48).toString("base64url");
    const platformKey = openAiKey();
    const keyport = runner.start(["serve"], {
      cwd: dataDir,
      env: cleanEnv({
        NODE_ENV: "test",
        PORT: "0",
        KEYPORT_DATA_DIR: dataDir,
        ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        KEYPORT_JWT_SECRET: jwtSecret,
        PLATFORM_OPENAI_API_KEY: platformKey,
        OPENAI_BASE_URL: mock.openaiBaseUrl,
        LOG_LEVEL: "info",
      }),
    });
    const [, url] = await keyport.waitFor(/Keyport is running at (http:\/\/[^\s]+)/);
    if (url === undefined) throw new Error("no address in the banner");
    // premium: 100 platform calls a minute, so 20 at once are all allowed.
    const token = await signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub: "shutdown-user", tier: "premium" });
    // The client's own connection pool, keep-alive like any HTTP client's, so the test can close it.
    const clientPool = new Agent();
    try {
      // undici's Agent works with Node's fetch; only the two copies of undici's types disagree.
      const fetchOptions = { dispatcher: clientPool } as unknown as NonNullable<ClientOptions["fetchOptions"]>;
      const client = new OpenAI({ baseURL: `${url}/openai/v1`, apiKey: token, maxRetries: 0, fetchOptions });

      // Half read through the SDK's parser, half as raw bytes (to see the closing `[DONE]`).
      let ended = 0;
      const streams = Array.from({ length: STREAMS }, (_, index) =>
        (index % 2 === 0 ? parsedStream(client, index) : rawStream(client, index)).finally(() => {
          ended += 1;
        }),
      );
      // Tracked at once, so a stream that fails early is not an unhandled rejection.
      const settled = Promise.allSettled(streams);

      await waitUntil(() => inferenceCalls(mock).length === STREAMS, `the provider has all ${STREAMS} requests`);
      // The premise of the test: the signal finds every stream still in flight.
      expect(ended, "streams that ended before SIGTERM").toBe(0);
      expect(keyport.child.kill("SIGTERM")).toBe(true);
      await keyport.waitFor(/"msg":"shutting down"/);
      // Refused (or reset from the listen backlog) before any answer, or a 503: never served.
      const late = await lateCall(url, token);
      expect(late.kind === "no-response" || late.status === 503, `a call on a new connection after SIGTERM: ${JSON.stringify(late)}`).toBe(true);

      const results = await settled;
      for (const [index, result] of results.entries()) {
        if (result.status === "rejected") throw new Error(`stream ${index} failed: ${String(result.reason)}`);
        const stream = result.value;
        expect(stream.source, `stream ${index}`).toBe("platform");
        expect(stream.text, `stream ${index}`).toBe(`Mock reply: ${promptOf(index)}`);
        expect(stream.lastFinishReason, `stream ${index}`).toBe("stop");
        if (index % 2 === 1) expect(stream.sawDone, `stream ${index}`).toBe(true);
      }

      // The client keeps its (now idle) connections open, as HTTP clients do: Keyport must not
      // wait for them. If it does, the client lets go here so the remaining checks still run.
      const exited = keyport.waitForExit(60_000);
      const exitedInTime = await Promise.race([exited.then(() => true), sleep(EXIT_AFTER_LAST_STREAM_MS).then(() => false)]);
      expect.soft(exitedInTime, `Keyport still running ${EXIT_AFTER_LAST_STREAM_MS} ms after its last stream ended`).toBe(true);
      if (!exitedInTime) await clientPool.close();
      const exit = await exited;
      expect.soft(exit.code, exit.stderr).toBe(0);
      expect.soft(exit.stdout).not.toMatch(/shutdown failed|Usage records lost/);
    } finally {
      if (!clientPool.closed) await clientPool.close();
    }

    // The late call never reached the provider; the 20 did, with the platform key.
    const calls = inferenceCalls(mock);
    expect(calls).toHaveLength(STREAMS);
    expect(calls.every((call) => upstreamKeyOf(call) === platformKey)).toBe(true);

    const database = new Database(path.join(dataDir, "keyport.db"), { readonly: true });
    try {
      const rows = database
        .prepare("select status, streamed, output_tokens as outputTokens, owner from usage_records")
        .all() as { status: string; streamed: number; outputTokens: number | null; owner: string }[];
      expect(rows).toHaveLength(STREAMS);
      expect(rows.filter((row) => row.status === "ok")).toHaveLength(STREAMS);
      expect(rows.every((row) => row.streamed === 1 && row.owner === "user:shutdown-user")).toBe(true);
      // "Mock reply:" and the five words of each prompt: usage was read from the end of each stream.
      expect(rows.map((row) => row.outputTokens)).toEqual(Array<number>(STREAMS).fill(7));
    } finally {
      database.close();
    }
  });
});

type LateOutcome = { kind: "response"; status: number } | { kind: "no-response"; code: string; status?: undefined };

/** A gateway call on a fresh connection: its HTTP status, or the connection error's code. */
async function lateCall(url: string, token: string): Promise<LateOutcome> {
  const pool = new Agent();
  try {
    const response = await undiciRequest(`${url}/openai/v1/chat/completions`, {
      dispatcher: pool,
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "too late" }] }),
    });
    await response.body.text();
    return { kind: "response", status: response.statusCode };
  } catch (error) {
    return { kind: "no-response", code: (error as { code?: string }).code ?? "unknown" };
  } finally {
    await pool.close();
  }
}

function promptOf(index: number): string {
  return `stream ${index} of twenty please`;
}

function chatStream(client: OpenAI, index: number) {
  return client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: promptOf(index) }],
    stream: true,
  });
}

async function parsedStream(client: OpenAI, index: number): Promise<StreamResult> {
  const { data: stream, response } = await chatStream(client, index).withResponse();
  let text = "";
  let lastFinishReason: string | null | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    lastFinishReason = chunk.choices[0]?.finish_reason;
  }
  return { index, source: response.headers.get("x-keyport-key-source"), text, lastFinishReason, sawDone: false };
}

async function rawStream(client: OpenAI, index: number): Promise<StreamResult> {
  const response = await chatStream(client, index).asResponse();
  const body = await response.text();
  let text = "";
  let lastFinishReason: string | null | undefined;
  for (const event of body.split("\n\n")) {
    const data = event.startsWith("data: ") ? event.slice("data: ".length) : undefined;
    if (data === undefined || data === "[DONE]") continue;
    const chunk = JSON.parse(data) as OpenAI.ChatCompletionChunk;
    text += chunk.choices[0]?.delta.content ?? "";
    lastFinishReason = chunk.choices[0]?.finish_reason;
  }
  return { index, source: response.headers.get("x-keyport-key-source"), text, lastFinishReason, sawDone: body.endsWith("data: [DONE]\n\n") };
}
