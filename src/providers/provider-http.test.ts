import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeNetworkFailure, requestProviderJson } from "./provider-http.js";

type Seen = { method: string; url: string; headers: IncomingMessage["headers"]; body: string };

describe("requestProviderJson", () => {
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const seen: Seen[] = [];
  let server: Server;
  let baseUrl = "";

  const routes: Record<string, (response: ServerResponse) => void> = {
    "/v1/json": (response) => {
      response.writeHead(201, { "content-type": "application/json", "X-Custom": "yes" });
      response.end(JSON.stringify({ ok: true }));
    },
    "/v1/text": (response) => response.end("<html>not json</html>"),
    "/v1/empty": (response) => {
      response.writeHead(204);
      response.end();
    },
    "/v1/huge": (response) => response.end(JSON.stringify({ padding: "x".repeat(4096) })),
    "/v1/slow": () => undefined,
  };

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        seen.push({
          method: request.method ?? "",
          url: request.url ?? "",
          headers: request.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        (routes[request.url ?? ""] ?? routes["/v1/json"])?.(response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dispatcher.close();
  });

  const request = (path: string, extra: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {}) =>
    requestProviderJson({
      dispatcher,
      baseUrl,
      path,
      method: extra.body === undefined ? "GET" : "POST",
      headers: extra.headers ?? {},
      ...(extra.body === undefined ? {} : { body: extra.body }),
      timeoutMs: extra.timeoutMs ?? 2000,
      maxBodyBytes: 1024,
    });

  it("keeps the base URL's path, parses JSON and lower-cases header names", async () => {
    const result = await request("/json");
    expect(result).toMatchObject({ status: 201, body: { ok: true } });
    expect("headers" in result ? result.headers["x-custom"] : undefined).toBe("yes");
    expect(seen.at(-1)?.url).toBe("/v1/json");
  });

  it("sends a JSON body with its content type", async () => {
    await request("/json", { body: { model: "m", n: 1 } });
    expect(seen.at(-1)).toMatchObject({ method: "POST", body: '{"model":"m","n":1}' });
    expect(seen.at(-1)?.headers["content-type"]).toBe("application/json");
  });

  it.each(["/text", "/empty", "/huge"])("reports %s as an undefined body, keeping the status", async (path) => {
    const result = await request(path);
    expect("status" in result).toBe(true);
    expect("body" in result ? result.body : "missing").toBeUndefined();
  });

  it("reports a timeout without any error text", async () => {
    expect(await request("/slow", { timeoutMs: 100 })).toEqual({ networkError: "timeout" });
  });

  it("reports a header value the client refuses as a connection failure, without quoting it", async () => {
    const secret = "sk-proj-CANARYabcdefghijklmnop";
    const result = await request("/json", { headers: { authorization: `Bearer ${secret}\r\nX-Injected: 1` } });
    expect(result).toEqual({ networkError: "connection" });
    expect(JSON.stringify(result)).not.toContain("CANARY");
  });

  it("reports an unparseable base URL as a connection failure", async () => {
    const result = await requestProviderJson({
      dispatcher,
      baseUrl: "not a url",
      path: "/models",
      method: "GET",
      headers: {},
      timeoutMs: 100,
    });
    expect(result).toEqual({ networkError: "connection" });
  });

  it("describes failures without naming the address", () => {
    expect(describeNetworkFailure("OpenAI", { networkError: "timeout" }, 5000)).toBe(
      "OpenAI did not answer within 5000 ms. Try again later.",
    );
    expect(describeNetworkFailure("OpenAI", { networkError: "connection" }, 5000)).toBe(
      "Could not connect to OpenAI. Try again later.",
    );
  });
});
