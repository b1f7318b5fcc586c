import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/** One webhook request as the receiver got it, and how it answered. */
export type ReceivedWebhook = { path: string; headers: IncomingHttpHeaders; body: string; answeredStatus: number };

export type WebhookReceiver = {
  /** `http://127.0.0.1:<port>`; any path is accepted. */
  url: string;
  requests: ReceivedWebhook[];
  /** Requests that were answered 2xx. */
  accepted(): ReceivedWebhook[];
  /** Answers the next `count` requests with `status`, then 204 again. */
  failNext(count: number, status?: number): void;
  /** Records every request (answered status 0) and holds it open without answering, until `release()`. */
  hang(): void;
  /** Answers again, and drops the connections of the held requests. */
  release(): void;
  close(): Promise<void>;
};

/**
 * Checks a Standard Webhooks signature the way a receiver does, with node:crypto only: the key
 * is the base64 after `whsec_`, the signed text is `<webhook-id>.<webhook-timestamp>.<body>`,
 * and any `v1,<base64>` entry of `webhook-signature` may match.
 */
export function verifyWebhookSignature(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${String(headers["webhook-id"])}.${String(headers["webhook-timestamp"])}.${body}`;
  const expected = createHmac("sha256", key).update(signed).digest();
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((entry) => {
      const [version, signature = ""] = entry.split(",");
      const given = Buffer.from(signature, "base64");
      return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

/** A local HTTP server that records every webhook it gets and answers as the test tells it. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedWebhook[] = [];
  let failures = { count: 0, status: 503 };
  let isHanging = false;
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      const answer = () => {
        let status = 204;
        if (failures.count > 0) {
          failures = { ...failures, count: failures.count - 1 };
          status = failures.status;
        }
        requests.push({ path: request.url ?? "/", headers: request.headers, body, answeredStatus: status });
        response.writeHead(status).end();
      };
      if (isHanging) requests.push({ path: request.url ?? "/", headers: request.headers, body, answeredStatus: 0 });
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    accepted: () => requests.filter((request) => request.answeredStatus >= 200 && request.answeredStatus < 300),
    failNext(count, status = 503) {
      failures = { count, status };
    },
    hang() {
      isHanging = true;
    },
    release() {
      isHanging = false;
      server.closeAllConnections();
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
