// The floor the gateway is measured against: a Node `http` server that pipes each request into an
// undici Pool to the provider and the response straight back, headers copied minus hop-by-hop
// ones. No auth, no parsing, no logging, nothing else. It uses undici's cheapest streaming call:
// `pool.request` followed by `stream.pipeline` costs about twice the CPU per request, and a floor
// that is slower than it needs to be would flatter the gateway.
//
//   node bench/bare-proxy.mjs --port 9000 --upstream http://127.0.0.1:8788
//
// `/openai/v1/...` and `/anthropic/v1/...` are forwarded as `/v1/...` (the same path shape the
// gateway serves); any other path is forwarded as is.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Pool } from "undici";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, upstream: { type: "string" }, host: { type: "string", default: "127.0.0.1" } },
});
if (values.upstream === undefined) {
  process.stderr.write("usage: node bench/bare-proxy.mjs --port <port> --upstream <origin>\n");
  process.exit(2);
}
const pool = new Pool(values.upstream);

/** @param {Record<string, string | string[] | undefined>} headers */
function endToEnd(headers) {
  /** @type {Record<string, string | string[]>} */
  const copied = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) copied[name] = value;
  }
  return copied;
}

/** @param {string} url */
function upstreamPath(url) {
  if (url.startsWith("/openai/")) return url.slice("/openai".length);
  if (url.startsWith("/anthropic/")) return url.slice("/anthropic".length);
  return url;
}

// `pool.stream` writes the upstream body straight into the response (undici's own proxying
// path); if the client goes away, the failed write aborts the upstream request.
const server = createServer((request, response) => {
  const method = request.method ?? "GET";
  pool.stream(
    {
      method,
      path: upstreamPath(request.url ?? "/"),
      headers: endToEnd(request.headers),
      body: method === "GET" || method === "HEAD" ? null : request,
      opaque: response,
    },
    ({ statusCode, headers, opaque }) => {
      opaque.writeHead(statusCode, endToEnd(headers));
      return opaque;
    },
    (error) => {
      if (error === null || error === undefined) return;
      if (!response.headersSent) {
        response.writeHead(502, { "content-type": "application/json" });
        response.end('{"error":{"message":"bare proxy: upstream failed"}}');
      } else {
        response.destroy();
      }
    },
  );
});

server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  process.stdout.write(`bare proxy listening on ${typeof address === "object" && address !== null ? address.port : values.port}\n`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  pool.close().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
