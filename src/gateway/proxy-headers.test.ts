import { describe, expect, it } from "vitest";
import { relayedResponseHeaders } from "./proxy-headers.js";

describe("relayedResponseHeaders", () => {
  const ours = { "x-request-id": "req_1", "x-keyport-key-source": "byok" };

  it("relays the provider's headers minus hop-by-hop ones, cookies and its request id, with ours on top", () => {
    const headers = relayedResponseHeaders(
      {
        "content-type": "application/json",
        "content-length": "12",
        connection: "keep-alive",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        "set-cookie": ["a=1"],
        "content-encoding": "identity",
        "x-request-id": "upstream-7",
        "openai-processing-ms": "31",
      },
      { dropContentLength: false },
      { ...ours },
    );
    expect(headers).toEqual({
      "content-type": "application/json",
      "content-length": "12",
      "openai-processing-ms": "31",
      "x-upstream-request-id": "upstream-7",
      ...ours,
    });
  });

  it("drops every header the Connection header names, whatever its case and spacing", () => {
    const headers = relayedResponseHeaders(
      { connection: "Keep-Alive, X-Secret-Hop ,close", "x-secret-hop": "1", "x-kept": "2" },
      { dropContentLength: false },
      {},
    );
    expect(headers).toEqual({ "x-kept": "2" });
  });

  it("drops Content-Length when asked (the body will be changed or streamed)", () => {
    expect(relayedResponseHeaders({ "content-length": "12", "x-kept": "1" }, { dropContentLength: true }, {})).toEqual({ "x-kept": "1" });
  });

  it("lets our headers win over the provider's of the same name", () => {
    expect(relayedResponseHeaders({ "x-keyport-key-source": "forged" }, { dropContentLength: false }, { ...ours })).toEqual(ours);
  });
});
