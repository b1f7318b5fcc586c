import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../lib/clock.js";
import { createAnthropicAdapter } from "../providers/anthropic/anthropic-adapter.js";
import { createOpenAiAdapter } from "../providers/openai/openai-adapter.js";
import type { CallContext } from "./call-context.js";
import { createGatewayDispatch } from "./gateway-dispatch.js";
import type { GatewayLog } from "./gateway-request.js";
import type { PipelineDeps } from "./pipeline.js";

const noNetwork = { send: () => Promise.reject(new Error("no network in these tests")) };
const providers = {
  openai: createOpenAiAdapter({ baseUrl: "http://127.0.0.1:1/v1", keyCheckTimeoutMs: 1, upstream: noNetwork }),
  anthropic: createAnthropicAdapter({ baseUrl: "http://127.0.0.1:1", keyCheckTimeoutMs: 1, upstream: noNetwork }),
};

describe("gateway dispatch", () => {
  const errors: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const log: GatewayLog & { child(): GatewayLog } = {
    level: "info",
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (_object, message) => errors.push(message),
    child: () => log,
  };
  const seen: CallContext[] = [];
  let failWith: Error | undefined;
  let server: Server;
  let url = "";

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    const dispatch = createGatewayDispatch({
      providers,
      pipeline: {} as PipelineDeps,
      run: async (call) => {
        seen.push(call);
        if (failWith !== undefined) throw failWith;
        call.response.writeHead(204);
        call.response.end();
      },
      bodyLimitBytes: 64,
      clock: systemClock,
      log,
    });
    server = createServer((request, response) => {
      if (!dispatch(request, response)) {
        response.writeHead(418);
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("routes every endpoint of every provider table, and nothing else", async () => {
    expect((await fetch(`${url}/openai/v1/chat/completions`, { method: "POST", body: "{}" })).status).toBe(204);
    expect(seen.at(-1)?.endpoint.name).toBe("chat.completions");
    expect((await fetch(`${url}/v1/messages?beta=true`, { method: "POST", body: "{}" })).status).toBe(204);
    expect(seen.at(-1)).toMatchObject({ adapter: { id: "anthropic" }, endpoint: { name: "messages" }, request: { url: "/v1/messages?beta=true", routePath: "/v1/messages" } });
    expect((await fetch(`${url}/anthropic/v1/models`)).status).toBe(204);
    expect((await fetch(`${url}/openai/v1/models`, { method: "POST", body: "{}" })).status).toBe(418);
    expect((await fetch(`${url}/openai/v1/files`)).status).toBe(418);
  });

  it("answers a body over the limit with 413 in the provider's shape, without running the call", async () => {
    const before = seen.length;
    const response = await fetch(`${url}/openai/v1/chat/completions`, { method: "POST", body: "x".repeat(65) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "payload_too_large" } });
    expect(seen.length).toBe(before);
  });

  it("catches a call that fails unexpectedly: a 500 in the provider's shape, logged, never an unhandled rejection", async () => {
    failWith = new Error("a bug in a step");
    try {
      const response = await fetch(`${url}/anthropic/v1/messages`, { method: "POST", body: "{}", signal: AbortSignal.timeout(3_000) });
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ type: "error", error: { type: "api_error", message: "Internal error" } });
      expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    } finally {
      failWith = undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(errors).toContain("gateway call failed unexpectedly");
    expect(unhandled).toEqual([]);
  });
});
