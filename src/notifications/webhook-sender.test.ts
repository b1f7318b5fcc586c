import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redacted } from "../lib/redacted.js";
import { generateWebhookSecret } from "./webhook-signature.js";
import { createWebhookSender, type WebhookSender, type WebhookSenderOptions } from "./webhook-sender.js";

type Received = { headers: IncomingHttpHeaders; body: string };

/** Standard Webhooks verification, written independently of the signer (as a receiver would). */
function verify(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const signed = `${String(headers["webhook-id"])}.${String(headers["webhook-timestamp"])}.${body}`;
  const expected = createHmac("sha256", key).update(signed).digest();
  return String(headers["webhook-signature"])
    .split(" ")
    .some((entry) => {
      const [version, signature] = entry.split(",");
      const given = Buffer.from(signature ?? "", "base64");
      return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

describe("webhook sender", () => {
  let server: Server;
  let baseUrl: string;
  const received: Received[] = [];
  let answer: (respond: (status: number, headers?: Record<string, string>) => void) => void = (respond) => respond(204);
  const senders: WebhookSender[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      request.on("end", () => {
        received.push({ headers: request.headers, body });
        answer((status, headers = {}) => response.writeHead(status, headers).end("the receiver's own text"));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(async () => {
    received.length = 0;
    answer = (respond) => respond(204);
    await Promise.all(senders.splice(0).map((sender) => sender.close()));
  });

  function sender(options: Partial<WebhookSenderOptions> = {}): WebhookSender {
    const created = createWebhookSender({ timeoutMs: 2_000, addresses: "any", requireHttps: false, userAgent: "Keyport-Webhooks/test", ...options });
    senders.push(created);
    return created;
  }

  const message = (secrets: string[], url = `${baseUrl}/hook`) => ({
    url,
    id: "evt_0123456789abcdefghjkmnpqrs",
    body: JSON.stringify({ type: "key.invalidated", data: { id: "evt_0123456789abcdefghjkmnpqrs" } }),
    secrets: secrets.map((secret) => redacted(secret)),
    timestampSeconds: 1_750_000_000,
  });

  it("posts the body with Standard Webhooks headers whose signature verifies with the secret", async () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(await sender().send(message([secret]))).toEqual({ ok: true, status: 204 });
    const [request] = received;
    expect(request?.headers).toMatchObject({
      "content-type": "application/json",
      "user-agent": "Keyport-Webhooks/test",
      "webhook-id": "evt_0123456789abcdefghjkmnpqrs",
      "webhook-timestamp": "1750000000",
    });
    expect(request?.body).toBe(message([secret]).body);
    expect(verify(secret, request?.headers ?? {}, request?.body ?? "")).toBe(true);
    expect(verify(generateWebhookSecret(), request?.headers ?? {}, request?.body ?? "")).toBe(false);
    expect(verify(secret, request?.headers ?? {}, `${request?.body ?? ""} `)).toBe(false);
  });

  it("signs with every secret given (a rotation's overlap), each verifying on its own", async () => {
    const [current, previous] = [generateWebhookSecret(), generateWebhookSecret()];
    await sender().send(message([current, previous]));
    const headers = received[0]?.headers ?? {};
    expect(String(headers["webhook-signature"]).split(" ")).toHaveLength(2);
    expect(verify(current, headers, received[0]?.body ?? "")).toBe(true);
    expect(verify(previous, headers, received[0]?.body ?? "")).toBe(true);
  });

  it("reports a non-2xx answer by its status only, and does not follow redirects", async () => {
    answer = (respond) => respond(503);
    expect(await sender().send(message([generateWebhookSecret()]))).toEqual({ ok: false, error: "HTTP 503" });
    answer = (respond) => respond(302, { location: `${baseUrl}/elsewhere` });
    expect(await sender().send(message([generateWebhookSecret()]))).toEqual({ ok: false, error: "HTTP 302 (redirects are not followed)" });
    expect(received.map((request) => request.headers["webhook-id"])).toHaveLength(2);
  });

  it("times out a receiver that never answers", async () => {
    answer = () => undefined;
    const result = await sender({ timeoutMs: 300 }).send(message([generateWebhookSecret()]));
    expect(result.ok === false && result.error).toMatch(/^timed out/);
  });

  it("reports a refused connection in plain words", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    expect(await sender().send(message([generateWebhookSecret()], `http://127.0.0.1:${port}/`))).toEqual({ ok: false, error: "connection refused" });
  });

  describe("public addresses only (owner webhooks)", () => {
    it("refuses an IP-literal loopback URL without connecting", async () => {
      const result = await sender({ addresses: "public" }).send(message([generateWebhookSecret()]));
      expect(result).toEqual({ ok: false, error: "refused: the URL must point to a public address: 127.0.0.1 is a loopback address" });
      expect(received).toHaveLength(0);
    });

    it("refuses a name whose answer at delivery is private, though it was public when saved (rebinding)", async () => {
      const port = (server.address() as AddressInfo).port;
      const lookups: string[] = [];
      const rebinding = sender({
        addresses: "public",
        resolveAll: (hostname, callback) => {
          lookups.push(hostname);
          callback(null, [{ address: "127.0.0.1", family: 4 }]);
        },
      });
      const result = await rebinding.send(message([generateWebhookSecret()], `http://hooks.example.com:${port}/hook`));
      expect(result).toEqual({ ok: false, error: "refused: hooks.example.com resolves to 127.0.0.1, a loopback address; webhooks go to public addresses only" });
      expect(lookups).toEqual(["hooks.example.com"]);
      expect(received).toHaveLength(0);
    });

    it("refuses localhost through the system resolver", async () => {
      const port = (server.address() as AddressInfo).port;
      const result = await sender({ addresses: "public" }).send(message([generateWebhookSecret()], `http://localhost:${port}/hook`));
      expect(result.ok === false && result.error).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
      expect(received).toHaveLength(0);
    });

    it("refuses http:// when https is required", async () => {
      const result = await sender({ addresses: "public", requireHttps: true }).send(message([generateWebhookSecret()], "http://hooks.example.com/"));
      expect(result).toEqual({ ok: false, error: "refused: the URL must use https:// (plain http:// is refused in production)" });
    });
  });
});
