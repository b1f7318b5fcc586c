import type { MockKeyBehaviour } from "./types.js";

/** What the server should send: a JSON body, or a list of pre-rendered SSE events. */
export type MockReply =
  | { kind: "json"; status: number; headers: Record<string, string>; body: unknown }
  | { kind: "sse"; headers: Record<string, string>; events: string[] };

/** Everything a provider simulation needs to know about one request. */
export type MockCall = {
  method: string;
  path: string;
  /** The key as sent, or `undefined` when the request carried none. */
  key: string | undefined;
  /** How the key behaves; `undefined` together with a missing key. */
  behaviour: MockKeyBehaviour | undefined;
  /** Parsed JSON body, `undefined` when empty. */
  body: unknown;
  /** A body was sent but it was not JSON. */
  isMalformedJson: boolean;
  /** Per-server counter, used for ids so they are unique and reproducible. */
  sequence: number;
  nowMs: number;
};

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
};

/** One SSE event; `event` adds the `event:` line Anthropic and the Responses API use. */
export function sseEvent(data: unknown, event?: string): string {
  const payload = typeof data === "string" ? data : JSON.stringify(data);
  return event === undefined ? `data: ${payload}\n\n` : `event: ${event}\ndata: ${payload}\n\n`;
}

export function jsonReply(status: number, headers: Record<string, string>, body: unknown): MockReply {
  return { kind: "json", status, headers, body };
}
