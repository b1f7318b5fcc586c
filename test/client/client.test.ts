import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyportClient, KeyportError } from "../../src/client/index.js";
import { startKeyport, type TestKeyport } from "../support/harness.js";
import { openAiKey } from "../support/keys.js";

const ADMIN_TOKEN = "operator-token-for-client-tests-0123456789";
const execFileAsync = promisify(execFile);

/** Resolves the rejection of `promise` as a KeyportError (fails the test otherwise). */
async function failure(promise: Promise<unknown>): Promise<KeyportError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

describe("keyport/client against a running Keyport", () => {
  let keyport: TestKeyport;

  beforeAll(async () => {
    keyport = await startKeyport({ env: { KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN } });
  });
  afterAll(async () => {
    await keyport.close();
  });

  it("manages an owner's keys with the owner's JWT", async () => {
    const client = createKeyportClient({ baseUrl: keyport.url, token: () => keyport.token("client-user", { tier: "premium" }) });
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const created = await client.apiKeys.create({ provider: "openai", apiKey, label: "Production" }, { idempotencyKey: "create-1" });
    expect(created).toMatchObject({ provider: "openai", label: "Production", status: "valid", isActive: true, byokAllowed: true });
    expect(await client.apiKeys.create({ provider: "openai", apiKey, label: "Production" }, { idempotencyKey: "create-1" })).toEqual(created);

    const listing = await client.apiKeys.list();
    expect(listing.keys.map((key) => key.id)).toEqual([created.id]);
    expect(listing.providers.find((entry) => entry.provider === "openai")).toMatchObject({ source: "byok", keyId: created.id });
    expect(await client.apiKeys.get(created.id)).toMatchObject({ id: created.id });
    expect(await client.apiKeys.update(created.id, { label: "Main" })).toMatchObject({ label: "Main" });
    expect((await client.apiKeys.test(created.id)).result).toBe("valid");

    const next = openAiKey();
    keyport.mock.setKey(next, "valid");
    const replaced = await client.apiKeys.replaceSecret(created.id, next);
    expect(replaced.keyHint).toBe(`****...${next.slice(-4)}`);

    expect((await client.usage.get({ groupBy: "day" })).totals.requests).toBe(0);
    expect(await client.usage.csv()).toMatch(/^day,requests,/);
    expect(client.usage.csvUrl({ groupBy: "model" })).toBe(`${keyport.url}/api/v1/usage.csv?groupBy=model`);
    const audit = await client.audit.list({ limit: 2 });
    expect(audit.events.map((event) => event.type)).toEqual(["key.rotated", "key.tested"]);
    expect(audit.nextCursor).not.toBeNull();
    expect((await client.audit.list({ cursor: audit.nextCursor ?? "", limit: 100 })).events.at(-1)?.type).toBe("key.created");

    await client.apiKeys.delete(created.id);
    const gone = await failure(client.apiKeys.get(created.id));
    expect(gone).toMatchObject({ status: 404, code: "not_found", type: "not_found_error" });
    expect(gone.requestId).toMatch(/^req_/);
  });

  it("reads and changes the owner's limits, rotates the webhook secret and lists events", async () => {
    const client = createKeyportClient({ baseUrl: keyport.url, token: () => keyport.token("client-limits", { tier: "premium" }) });
    const initial = await client.limits.get();
    expect(initial).toMatchObject({ monthlyBudgetUsd: null, notifyThresholdUsd: null, caps: [], spentUsd: 0 });
    expect(initial.webhookSecret).toMatch(/^whsec_/);
    const changed = await client.limits.update({ monthlyBudgetUsd: 12.5, notifyEmail: "owner@example.com" });
    expect(changed).toMatchObject({ monthlyBudgetUsd: 12.5, notifyEmail: "owner@example.com", caps: [{ kind: "owner_budget", limitUsd: 12.5, remainingUsd: 12.5 }] });
    const refused = await failure(client.limits.update({ monthlyBudgetUsd: -1 }));
    expect(refused).toMatchObject({ status: 400, code: "invalid_request" });
    expect(refused.message).toContain("monthlyBudgetUsd");
    expect((await client.limits.update({ monthlyBudgetUsd: null })).caps).toEqual([]);

    const rotated = await client.limits.rotateWebhookSecret();
    expect(rotated.webhookSecret).toMatch(/^whsec_/);
    expect(rotated.webhookSecret).not.toBe(initial.webhookSecret);
    expect((await client.limits.get()).webhookSecret).toBe(rotated.webhookSecret);

    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    await client.apiKeys.create({ provider: "openai", apiKey });
    const events = await client.events.list({ limit: 1 });
    expect(events.events.map((event) => event.type)).toEqual(["key.activated"]);
    expect(events.nextCursor).not.toBeNull();
    expect((await client.events.list({ cursor: events.nextCursor ?? "" })).events.map((event) => event.type)).toEqual(["key.created"]);
  });

  it("turns error answers into KeyportError with Keyport's code and message", async () => {
    const client = createKeyportClient({ baseUrl: keyport.url, token: await keyport.token("client-errors", { tier: "premium" }) });
    const badFormat = await failure(client.apiKeys.create({ provider: "openai", apiKey: "not-a-key" }));
    expect(badFormat).toMatchObject({ status: 400, code: "invalid_key_format" });
    expect(badFormat.message).not.toContain("not-a-key");

    const anonymous = createKeyportClient({ baseUrl: keyport.url });
    expect(await failure(anonymous.apiKeys.list())).toMatchObject({ status: 401, code: "unauthenticated" });
    expect(await failure(anonymous.portalSessions.create({ sub: "x" }))).toMatchObject({ status: 401, code: "unauthenticated" });
  });

  it("reports an unreachable Keyport as network_error and a foreign answer as unexpected_response", async () => {
    const unreachable = createKeyportClient({ baseUrl: "http://127.0.0.1:9", token: "t" });
    expect(await failure(unreachable.apiKeys.list())).toMatchObject({ status: 0, code: "network_error" });
    const proxy = createKeyportClient({ baseUrl: keyport.url, fetch: async () => new Response("<html>Bad gateway</html>", { status: 502 }) });
    expect(await failure(proxy.apiKeys.list())).toMatchObject({ status: 502, code: "unexpected_response" });
  });

  it("creates a portal link with the operator token, whose session the page then uses with its CSRF token", async () => {
    const operator = createKeyportClient({ baseUrl: keyport.url, token: ADMIN_TOKEN });
    const link = await operator.portalSessions.create({ sub: "page-user", tier: "premium", theme: { productName: "Acme", mode: "dark" } });
    expect(link.url).toMatch(/\/portal\/open\//);

    const opened = await fetch(link.url, { redirect: "manual" });
    const cookie = opened.headers.get("set-cookie")?.split(";")[0] ?? "";
    const csrf: { token?: string } = {};
    // The page's client: no bearer token, the cookie (here set by hand) and the CSRF token.
    const page = createKeyportClient({
      baseUrl: keyport.url,
      csrfToken: () => csrf.token,
      fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), cookie, origin: keyport.url } }),
    });
    const current = await page.portalSessions.current();
    expect(current).toMatchObject({ owner: "user:page-user", theme: { productName: "Acme", mode: "dark" } });
    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    expect(await failure(page.apiKeys.create({ provider: "openai", apiKey }))).toMatchObject({ status: 403, code: "forbidden" });
    csrf.token = current.csrfToken;
    expect(await page.apiKeys.create({ provider: "openai", apiKey })).toMatchObject({ status: "valid" });
    await page.portalSessions.endCurrent();
    expect(await failure(page.apiKeys.list())).toMatchObject({ status: 401 });
  });
});

describe("the keyport/client package export", () => {
  it("resolves to the built client (npm run build)", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const script = "const c = await import('keyport/client'); console.log(typeof c.createKeyportClient, typeof c.KeyportError);";
    const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], { cwd: root });
    expect(stdout.trim()).toBe("function function");
  });
});
