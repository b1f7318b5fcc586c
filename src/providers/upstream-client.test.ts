import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCancellation } from "../lib/cancellation.js";
import { createUpstreamClient, readBody, UpstreamFailure, type UpstreamRequest } from "./upstream-client.js";

const dispatcher = new Agent({ keepAliveTimeout: 1000 });

function request(path: string): UpstreamRequest {
  return { method: "GET", path, headers: {}, body: undefined, cancellation: createCancellation(), timeouts: { headersTimeoutMs: 2000, bodyTimeoutMs: 2000 } };
}

async function failureOf(promise: Promise<unknown>): Promise<UpstreamFailure> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  if (!(error instanceof UpstreamFailure)) throw new Error(`expected an UpstreamFailure, got ${String(error)}`);
  return error;
}

describe("upstream client", () => {
  let server: Server;
  let baseUrl = "";

  beforeAll(async () => {
    server = createServer((incoming, response) => {
      incoming.resume();
      if (incoming.url === "/v1/reset") {
        incoming.socket.resetAndDestroy();
        return;
      }
      const json = Buffer.from(JSON.stringify({ path: incoming.url, usage: { prompt_tokens: 3 } }));
      if (incoming.url === "/v1/gzip") {
        const gzipped = gzipSync(json);
        response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": String(gzipped.length) });
        response.end(gzipped);
        return;
      }
      if (incoming.url === "/v1/odd") {
        response.writeHead(200, { "content-type": "application/json", "content-encoding": "x-odd" });
        response.end("opaque bytes");
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(json);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dispatcher.close();
  });

  it("sends under the base URL's path", async () => {
    const response = await createUpstreamClient({ dispatcher, baseUrl: `${baseUrl}/` }).send(request("/models?limit=1"));
    expect(JSON.parse((await readBody(response.body)).toString())).toMatchObject({ path: "/v1/models?limit=1" });
  });

  it("decodes a gzip answer and drops its content-encoding and content-length", async () => {
    const response = await createUpstreamClient({ dispatcher, baseUrl }).send(request("/gzip"));
    expect(response.headers["content-encoding"]).toBeUndefined();
    expect(response.headers["content-length"]).toBeUndefined();
    expect(JSON.parse((await readBody(response.body)).toString())).toMatchObject({ path: "/v1/gzip" });
  });

  it("leaves an encoding it cannot decode as it is, with its header, for the client to decode", async () => {
    const response = await createUpstreamClient({ dispatcher, baseUrl }).send(request("/odd"));
    expect(response.headers["content-encoding"]).toBe("x-odd");
    expect((await readBody(response.body)).toString()).toBe("opaque bytes");
  });

  it("tells a refused connection (nothing sent) from one reset after the request went out", async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const refused = await failureOf(createUpstreamClient({ dispatcher, baseUrl: `http://127.0.0.1:${port}/v1` }).send(request("/models")));
    expect(refused).toMatchObject({ kind: "connection", wasSent: false });
    const reset = await failureOf(createUpstreamClient({ dispatcher, baseUrl }).send(request("/reset")));
    expect(reset).toMatchObject({ kind: "connection", wasSent: true });
  });

  it("never quotes a header value in its failure", async () => {
    const sent = { ...request("/models"), headers: { authorization: "Bearer sk-proj-secret\r\nx: 1" } };
    const error = await failureOf(createUpstreamClient({ dispatcher, baseUrl }).send(sent));
    expect(error).toMatchObject({ kind: "connection", wasSent: false });
    expect(String(error)).not.toContain("sk-proj-secret");
  });
});
