import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type BrotliCompress, createBrotliCompress, createDeflate, createGzip, type Deflate, type Gzip } from "node:zlib";
import { anthropicFaultReply } from "./anthropic-errors.js";
import { handleAnthropicCall } from "./anthropic-mock.js";
import { CONTROL_PREFIX, handleControlRequest } from "./mock-control.js";
import type { MockControlState } from "./mock-control.js";
import { createFaultList, parseMockFault } from "./mock-faults.js";
import type { MockCall, MockReply } from "./mock-reply.js";
import { isRecord } from "./mock-text.js";
import { openAiFaultReply } from "./openai-errors.js";
import { handleOpenAiCall } from "./openai-mock.js";
import { createRequestRecorder } from "./request-recorder.js";
import type { MockContentEncoding, MockFault, MockKeyBehaviour, MockProvider, MockProviderOptions } from "./types.js";

/** Request bodies above this are refused with 413. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const DEFAULT_RECORD_LIMIT = 1000;
const OPENAI_ONLY_PATHS = new Set(["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]);

type Flavour = "openai" | "anthropic";

/**
 * Starts the local OpenAI + Anthropic simulator. Plain `node:http`, no per-request logging, so a
 * benchmark can drive it at thousands of requests per second.
 *
 * Routes: OpenAI `GET /v1/models[/{id}]`, `POST /v1/chat/completions`, `/v1/embeddings`,
 * `/v1/responses`; Anthropic `GET /v1/models[/{id}]`, `POST /v1/messages`,
 * `/v1/messages/count_tokens`; the control API under `/__mock/` (see `mock-control.ts`).
 * Replies and usage are deterministic (see `mock-text.ts`): `"cache": true` in a request body
 * makes half the input count as cached.
 */
export async function startMockProvider(options: MockProviderOptions = {}): Promise<MockProvider> {
  const state: MockControlState = {
    keys: new Map(Object.entries(options.keys ?? {})),
    faults: createFaultList(),
    recorder: createRequestRecorder(options.recordLimit ?? DEFAULT_RECORD_LIMIT),
  };
  const delays = createDelays();
  const latencyMs = options.latencyMs ?? 0;
  const acceptUnknownKeys = options.acceptUnknownKeys ?? false;
  let sequence = 0;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawUrl = request.url ?? "/";
    const queryStart = rawUrl.indexOf("?");
    const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
    const method = request.method ?? "GET";
    const raw = await readBody(request);
    if (raw === "too_large") {
      response.writeHead(413, { "content-type": "application/json", connection: "close" });
      response.end(JSON.stringify({ error: { message: "Request body too large", type: "invalid_request_error" } }));
      return;
    }
    const { body, isMalformedJson } = parseBody(raw);

    if (path.startsWith(CONTROL_PREFIX)) {
      const answer = handleControlRequest(method, path, isMalformedJson ? undefined : body, state);
      sendJson(response, answer.status, {}, answer.body);
      return;
    }

    const headers = flattenHeaders(request);
    const flavour = detectFlavour(path, headers);
    const key = extractKey(flavour, headers);
    state.recorder.record({ method, path, search: queryStart === -1 ? "" : rawUrl.slice(queryStart), headers, body });
    sequence += 1;
    const behaviour: MockKeyBehaviour | undefined =
      key === undefined ? undefined : (state.keys.get(key) ?? (acceptUnknownKeys ? "valid" : "invalid"));
    const call: MockCall = { method, path, key, behaviour, body, isMalformedJson, sequence, nowMs: Date.now() };
    const isStream = isRecord(body) && body.stream === true;
    const fault = state.faults.take({ path, key, isStream });

    if (fault?.kind === "reset") {
      request.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === "delay" && !(await delays.wait(fault.ms, response))) return;
    if (latencyMs > 0 && !(await delays.wait(latencyMs, response))) return;

    const reply = fault?.kind === "status" ? statusFaultReply(flavour, call, fault) : routeCall(flavour, call);
    if (fault?.kind === "alter") {
      sendAltered(response, { ...reply, headers: { ...reply.headers, ...fault.headers } }, fault.contentEncoding);
      return;
    }
    send(response, reply, fault?.kind === "reset-mid-stream" ? fault.afterEvents : undefined);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      // A bug in the mock must not take the process down; the client sees a generic 500.
      if (!response.headersSent) sendJson(response, 500, {}, { error: { message: "mock provider failure" } });
      else response.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: url,
    setKey: (key, behaviour) => {
      state.keys.set(key, behaviour);
    },
    injectFault(fault: MockFault) {
      const parsed = parseMockFault(fault);
      if (typeof parsed === "string") throw new Error(`invalid mock fault: ${parsed}`);
      state.faults.add(parsed);
    },
    clearFaults: () => state.faults.clear(),
    requests: () => state.recorder.list(),
    clearRequests: () => state.recorder.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        delays.cancelAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * `/v1/models` exists on both providers. Anthropic clients always send `anthropic-version` (the
 * newer SDK authenticates with `Authorization: Bearer` too), so that header decides first.
 */
function detectFlavour(path: string, headers: Record<string, string>): Flavour {
  if (path.startsWith("/v1/messages")) return "anthropic";
  if (OPENAI_ONLY_PATHS.has(path)) return "openai";
  if (headers["anthropic-version"] !== undefined || headers["x-api-key"] !== undefined) return "anthropic";
  return "openai";
}

function extractKey(flavour: Flavour, headers: Record<string, string>): string | undefined {
  const apiKeyHeader = headers["x-api-key"];
  if (flavour === "anthropic" && apiKeyHeader !== undefined && apiKeyHeader !== "") return apiKeyHeader;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? "");
  return match?.[1];
}

function routeCall(flavour: Flavour, call: MockCall): MockReply {
  return flavour === "anthropic" ? handleAnthropicCall(call) : handleOpenAiCall(call);
}

function statusFaultReply(flavour: Flavour, call: MockCall, fault: MockFault & { kind: "status" }): MockReply {
  const base = flavour === "anthropic" ? anthropicFaultReply(call, fault.status) : openAiFaultReply(call, fault.status);
  const headers = { ...base.headers, ...fault.headers };
  const body = fault.body ?? (base.kind === "json" ? base.body : undefined);
  return { kind: "json", status: fault.status, headers, body };
}

function send(response: ServerResponse, reply: MockReply, cutAfterEvents: number | undefined): void {
  if (reply.kind === "json") {
    sendJson(response, reply.status, reply.headers, reply.body);
    return;
  }
  response.writeHead(200, reply.headers);
  if (cutAfterEvents === undefined) {
    // One chunk per event: clients must reassemble events across reads. Not corked: on Node.js
    // 22.23, `end()` between `cork()` and `uncork()` sends only the first write of a chunked body.
    for (const event of reply.events) response.write(event);
    response.end();
    return;
  }
  // Close (not RST) once the chosen events are flushed: the client reads them, then sees the
  // chunked body end early, which is what a dropped upstream connection looks like.
  const sent = reply.events.slice(0, cutAfterEvents).join("");
  response.flushHeaders();
  response.write(sent, () => response.socket?.destroy());
}

/**
 * A reply with its body compressed (when an encoding is given): JSON in one go, a stream event by
 * event, each flushed so the client can decode it as it arrives.
 */
function sendAltered(response: ServerResponse, reply: MockReply, encoding: MockContentEncoding | undefined): void {
  if (encoding === undefined) {
    send(response, reply, undefined);
    return;
  }
  const compressor = createCompressor(encoding);
  const isJson = reply.kind === "json";
  response.writeHead(isJson ? reply.status : 200, {
    ...reply.headers,
    ...(isJson ? { "content-type": "application/json" } : {}),
    "content-encoding": encoding,
  });
  compressor.pipe(response);
  if (isJson) {
    compressor.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
    return;
  }
  const events = [...reply.events];
  const writeNext = () => {
    const event = events.shift();
    if (event === undefined) {
      compressor.end();
      return;
    }
    compressor.write(event);
    compressor.flush(() => setImmediate(writeNext));
  };
  writeNext();
}

function createCompressor(encoding: MockContentEncoding): Gzip | Deflate | BrotliCompress {
  switch (encoding) {
    case "gzip":
      return createGzip();
    case "deflate":
      return createDeflate();
    case "br":
      return createBrotliCompress();
  }
}

function sendJson(response: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  if (body === undefined) {
    response.writeHead(status, headers);
    response.end();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
  });
  response.end(text);
}

function readBody(request: IncomingMessage): Promise<Buffer | undefined | "too_large"> {
  const hasBody = request.headers["content-length"] !== undefined || request.headers["transfer-encoding"] !== undefined;
  if (!hasBody) {
    request.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let isTooLarge = false;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) isTooLarge = true;
      else chunks.push(chunk);
    });
    request.on("end", () => resolve(isTooLarge ? "too_large" : size === 0 ? undefined : Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function parseBody(raw: Buffer | undefined): { body: unknown; isMalformedJson: boolean } {
  if (raw === undefined) return { body: undefined, isMalformedJson: false };
  const text = raw.toString("utf8");
  try {
    return { body: JSON.parse(text) as unknown, isMalformedJson: false };
  } catch {
    return { body: text, isMalformedJson: true };
  }
}

function flattenHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

/** Delays that end early when the client goes away or the mock closes, so nothing lingers. */
function createDelays() {
  const pending = new Set<() => void>();
  return {
    /** Resolves `true` after `ms`, or `false` as soon as the response is closed. */
    wait(ms: number, response: ServerResponse): Promise<boolean> {
      return new Promise((resolve) => {
        const finish = (isCompleted: boolean) => {
          clearTimeout(timer);
          response.off("close", cancel);
          pending.delete(cancel);
          resolve(isCompleted);
        };
        const cancel = () => finish(false);
        const timer = setTimeout(() => finish(true), ms);
        response.once("close", cancel);
        pending.add(cancel);
      });
    },
    cancelAll() {
      for (const cancel of [...pending]) cancel();
    },
  };
}
