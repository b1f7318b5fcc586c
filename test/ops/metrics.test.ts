import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../src/config/tiers.js";
import { drain, type GatewayKeyport, keyView, openAiVia, startGateway, storeKey, type TestUser } from "../gateway/gateway-support.js";
import { startKeyport } from "../support/harness.js";
import { parseExposition, type Sample, scrapeUntil, sumOf, valueOf } from "./metrics-support.js";

const ADMIN_TOKEN = randomBytes(24).toString("base64url");
/** A tier with three platform calls a day: the fourth is refused with `rate_limited`. */
const TIERS = { ...DEFAULT_TIERS, tight: { requestsPerMinute: 3, requestsPerDay: 3, byokAllowed: true } };
const CHAT = "/v1/chat/completions";

function chatBody(user: TestUser, call = 0) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Call ${call} from ${user.marker}` }] };
}

async function newUser(keyport: GatewayKeyport, name: string, tier: string): Promise<TestUser> {
  const sub = `metrics-${name}-${Date.now().toString(36)}`;
  return { sub, owner: `user:${sub}`, token: await keyport.token(sub, { tier }), marker: `marker-${sub}` };
}

const calls = (labels: Record<string, string>) => ["keyport_gateway_calls_total", { provider: "openai", endpoint: "chat.completions", ...labels }] as const;

describe("GET /metrics after known gateway traffic", () => {
  let keyport: GatewayKeyport;
  /** Every value that must never be a label: owners, subjects, key ids, provider keys, tokens, markers, the model. */
  const secrets: string[] = [];
  let samples: Sample[];

  beforeAll(async () => {
    keyport = await startGateway({ env: { KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN, KEYPORT_TIERS: JSON.stringify(TIERS) } });
    secrets.push(ADMIN_TOKEN, keyport.platformKeys.openai ?? "", keyport.platformKeys.anthropic ?? "", "gpt-4o-mini");

    // Two calls on the owner's own key, one of them streamed.
    const byok = await newUser(keyport, "byok", "premium");
    const byokKey = await storeKey(keyport, byok, "openai");
    secrets.push(byok.owner, byok.sub, byok.token, byok.marker, byokKey.id, byokKey.apiKey);
    await openAiVia(keyport, byok.token).chat.completions.create(chatBody(byok, 1));
    const stream = await openAiVia(keyport, byok.token).chat.completions.create({ ...chatBody(byok, 2), stream: true });
    expect((await drain(stream)).error).toBeUndefined();

    // A 500, retried once, then the answer.
    keyport.mock.injectFault({ kind: "status", status: 500, match: { path: CHAT, key: byokKey.apiKey } });
    await openAiVia(keyport, byok.token).chat.completions.create(chatBody(byok, 3));

    // A key revoked at the provider: marked invalid, the call falls back to the platform key.
    const revoked = await newUser(keyport, "revoked", "premium");
    const revokedKey = await storeKey(keyport, revoked, "openai");
    secrets.push(revoked.owner, revoked.sub, revoked.token, revoked.marker, revokedKey.id, revokedKey.apiKey);
    keyport.mock.setKey(revokedKey.apiKey, "invalid");
    await openAiVia(keyport, revoked.token).chat.completions.create(chatBody(revoked));
    expect(await keyView(keyport, revoked, revokedKey.id)).toMatchObject({ status: "invalid" });

    // Three platform calls, then a refusal by the rate limit.
    const tight = await newUser(keyport, "tight", "tight");
    secrets.push(tight.owner, tight.sub, tight.token, tight.marker);
    for (let call = 0; call < 3; call += 1) await openAiVia(keyport, tight.token).chat.completions.create(chatBody(tight, call));
    const limited = await openAiVia(keyport, tight.token)
      .chat.completions.create(chatBody(tight, 4))
      .catch((error: { status?: number }) => error);
    expect(limited).toMatchObject({ status: 429 });

    // A budget of zero: the call is refused with budget_exceeded before it goes upstream.
    const broke = await newUser(keyport, "broke", "premium");
    await storeKey(keyport, broke, "openai").then((key) => secrets.push(key.id, key.apiKey));
    secrets.push(broke.owner, broke.sub, broke.token, broke.marker);
    const limits = await keyport.request("PUT", "/api/v1/limits", { token: broke.token, body: { monthlyBudgetUsd: 0 } });
    expect(limits.status, limits.text).toBe(200);
    const overBudget = await keyport.request("POST", `/openai${CHAT}`, { token: broke.token, body: chatBody(broke) });
    expect(overBudget.status, overBudget.text).toBe(429);

    // A refused token.
    const refused = await keyport.request("POST", `/openai${CHAT}`, { token: "not-a-jwt", body: chatBody(tight) });
    expect(refused.status).toBe(401);

    samples = await scrapeUntil(keyport, ADMIN_TOKEN, (found) => sumOf(found, "keyport_gateway_calls_total") >= 10);
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("counts calls by provider, endpoint, key source, HTTP status and outcome", () => {
    expect(valueOf(samples, ...calls({ source: "byok", status: "200", outcome: "ok" }))).toBe(3);
    // The fallback and the three platform calls of the tight tier.
    expect(valueOf(samples, ...calls({ source: "platform", status: "200", outcome: "ok" }))).toBe(4);
    expect(valueOf(samples, ...calls({ source: "platform", status: "429", outcome: "refused" }))).toBe(1);
    expect(valueOf(samples, ...calls({ source: "none", status: "401", outcome: "refused" }))).toBe(1);
    expect(valueOf(samples, ...calls({ source: "byok", status: "429", outcome: "refused" }))).toBe(1);
    expect(sumOf(samples, "keyport_gateway_calls_total")).toBe(10);
  });

  it("counts Keyport's refusals by error code: the rate limit, the budget, the token", () => {
    expect(valueOf(samples, "keyport_gateway_errors_total", { provider: "openai", code: "rate_limited" })).toBe(1);
    expect(valueOf(samples, "keyport_gateway_errors_total", { provider: "openai", code: "unauthenticated" })).toBe(1);
    expect(valueOf(samples, "keyport_gateway_errors_total", { provider: "openai", code: "budget_exceeded" })).toBe(1);
    expect(sumOf(samples, "keyport_gateway_errors_total")).toBe(3);
  });

  it("counts the retry, the fallback and the key's status change", () => {
    expect(valueOf(samples, "keyport_gateway_upstream_retries_total", { provider: "openai", reason: "unavailable" })).toBe(1);
    expect(sumOf(samples, "keyport_gateway_upstream_retries_total")).toBe(1);
    expect(valueOf(samples, "keyport_gateway_fallbacks_total", { provider: "openai", endpoint: "chat.completions" })).toBe(1);
    expect(valueOf(samples, "keyport_key_status_changes_total", { provider: "openai", status: "invalid" })).toBe(1);
  });

  it("observes added and upstream latency for every call that went upstream, time to first byte for the stream", () => {
    // Seven calls reached the provider; the three refusals did not.
    expect(valueOf(samples, "keyport_gateway_upstream_latency_seconds_count", { provider: "openai", endpoint: "chat.completions" })).toBe(7);
    // Keyport's share is observed for every answered call, refusals included.
    expect(sumOf(samples, "keyport_gateway_added_latency_seconds_count")).toBe(10);
    expect(valueOf(samples, "keyport_gateway_stream_first_byte_seconds_count", { provider: "openai", endpoint: "chat.completions" })).toBe(1);
    expect(sumOf(samples, "keyport_gateway_tokens_total", { kind: "input" })).toBeGreaterThan(0);
    expect(sumOf(samples, "keyport_gateway_tokens_total", { kind: "output" })).toBeGreaterThan(0);
  });

  it("shows health, readiness and the usage writer, and the process metrics", async () => {
    expect(valueOf(samples, "keyport_dependency_up", { dependency: "database" })).toBe(1);
    // Redis is not configured here: no sample rather than a misleading 0.
    expect(samples.some((sample) => sample.name === "keyport_dependency_up" && sample.labels.dependency === "redis")).toBe(false);
    expect(valueOf(samples, "keyport_ready")).toBe(1);
    expect(sumOf(samples, "keyport_degraded")).toBe(0);
    expect(samples.filter((sample) => sample.name === "keyport_degraded").map((sample) => sample.labels.name)).toContain("redis_unreachable");
    expect(samples.some((sample) => sample.name === "keyport_usage_queue_depth")).toBe(true);
    expect(valueOf(samples, "keyport_usage_records_dropped_total")).toBe(0);
    expect(samples.some((sample) => sample.name === "process_cpu_user_seconds_total")).toBe(true);
    expect(samples.some((sample) => sample.name === "nodejs_eventloop_lag_seconds")).toBe(true);
    // The seven usage records are written within a few flushes.
    const later = await scrapeUntil(keyport, ADMIN_TOKEN, (found) => valueOf(found, "keyport_usage_records_written_total") >= 7);
    expect(valueOf(later, "keyport_usage_records_written_total")).toBe(7);
  });

  it("never has an owner, a key, a token, a marker or a model as a label value", () => {
    const values = samples.flatMap((sample) => Object.values(sample.labels));
    expect(values.length).toBeGreaterThan(0);
    for (const secret of secrets.filter((value) => value !== "")) {
      for (const value of values) expect(value.includes(secret) || (value.length >= 8 && secret.includes(value)), `label value ${value}`).toBe(false);
    }
    for (const value of values) expect(value).not.toMatch(/^(user|project):|^(key|req|use)_[0-9a-z]{26}$|^sk-/);
  });

  it("asks for the operator token: 401 without it or with a wrong one", async () => {
    expect((await keyport.request("GET", "/metrics")).status).toBe(401);
    expect((await keyport.request("GET", "/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } })).status).toBe(401);
    const response = await keyport.request("GET", "/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get("cache-control")).toBe("no-store");
  });
});

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("where /metrics is served", () => {
  it("without an operator token, /metrics on the main port answers 403 (it is for the operator)", async () => {
    const keyport = await startKeyport();
    try {
      const response = await keyport.request("GET", "/metrics");
      expect(response.status).toBe(403);
      expect(response.body.error.code).toBe("forbidden");
    } finally {
      await keyport.close();
    }
  });

  it("KEYPORT_METRICS_AUTH=none serves it openly on the main port", async () => {
    const keyport = await startKeyport({ env: { KEYPORT_METRICS_AUTH: "none" } });
    try {
      const response = await keyport.request("GET", "/metrics");
      expect(response.status).toBe(200);
      expect(valueOf(parseExposition(response.text), "keyport_ready")).toBe(1);
    } finally {
      await keyport.close();
    }
  });

  it("KEYPORT_METRICS_PORT: a listener of its own (open by default), and none on the main port", async () => {
    const keyport = await startKeyport({ env: { KEYPORT_METRICS_PORT: String(await freePort()), KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN } });
    try {
      const url = keyport.app.metricsUrl ?? "";
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      expect(valueOf(parseExposition(await response.text()), "keyport_dependency_up", { dependency: "database" })).toBe(1);
      expect((await fetch(`${url}/`)).status).toBe(404);
      expect((await fetch(`${url}/metrics`, { method: "POST" })).status).toBe(404);
      expect((await keyport.request("GET", "/metrics", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(404);
    } finally {
      await keyport.close();
    }
  });

  it("KEYPORT_METRICS_PORT with KEYPORT_METRICS_AUTH=operator: 401 without the token, 200 with it", async () => {
    const keyport = await startKeyport({
      env: { KEYPORT_METRICS_PORT: String(await freePort()), KEYPORT_METRICS_AUTH: "operator", KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    try {
      const url = `${keyport.app.metricsUrl ?? ""}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
    } finally {
      await keyport.close();
    }
  });
});

