import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../src/config/tiers.js";
import {
  anthropicVia,
  createUsageBarrier,
  createUsers,
  expectNoJwtUpstream,
  type GatewayKeyport,
  keyView,
  openAiVia,
  secondsLeftInMinute,
  settledUsage,
  startGateway,
  storeKey,
  type TestUser,
  upstreamRequests,
} from "./gateway-support.js";

/** The default tiers plus one that allows BYOK but only three platform calls a minute. */
const TIERS = { ...DEFAULT_TIERS, tight: { requestsPerMinute: 3, requestsPerDay: 3, byokAllowed: true } };

function chatBody(user: TestUser, call = 0) {
  return { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: `Call ${call} from ${user.marker}` }] };
}

function messagesBody(user: TestUser) {
  return { model: "claude-haiku-4-5", max_tokens: 32, messages: [{ role: "user" as const, content: `Hello from ${user.marker}` }] };
}

/** Waits for the next minute when the current one is nearly over, so a burst of calls stays in one window. */
async function startOfQuietWindow(marginSeconds: number): Promise<void> {
  const left = secondsLeftInMinute();
  if (left < marginSeconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 50));
}

// OpenAI has a platform key here, Anthropic has none: both sides of "is there a platform key".
describe("gateway tiers: which key serves a call", () => {
  let keyport: GatewayKeyport;
  let newUser: (tier: string) => Promise<TestUser>;
  let barrier: () => Promise<void>;
  let platformOpenAiKey: string;

  beforeAll(async () => {
    keyport = await startGateway({ platformKeys: { anthropic: false }, env: { KEYPORT_TIERS: JSON.stringify(TIERS) } });
    newUser = createUsers(keyport, "tiers");
    barrier = createUsageBarrier(keyport);
    platformOpenAiKey = keyport.platformKeys.openai ?? "";
  });
  afterAll(async () => {
    await keyport.close();
  });

  describe("tier matrix", () => {
    it("premium with a stored key: the owner's key (byok)", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${key.apiKey}`]);
      expectNoJwtUpstream(upstream, user.token);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records.map((record) => [record.source, record.keyId])).toEqual([["byok", key.id]]);
    });

    it("premium without a key: the platform key", async () => {
      const user = await newUser("premium");
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      expect(response.headers.get("ratelimit-limit")).toBe("100");
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${platformOpenAiKey}`]);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records.map((record) => [record.source, record.keyId])).toEqual([["platform", null]]);
    });

    it("community with a stored key: the platform key, because the tier does not allow BYOK", async () => {
      const user = await newUser("community");
      const key = await storeKey(keyport, user, "openai");
      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      expect(response.headers.get("ratelimit-limit")).toBe("10");
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${platformOpenAiKey}`]);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records.map((record) => [record.source, record.keyId])).toEqual([["platform", null]]);
      // The stored key stays stored and unused.
      expect(await keyView(keyport, user, key.id)).toMatchObject({ status: "valid", isActive: true, totalRequests: 0 });
    });

    it("premium whose active key is invalid: the platform key, and the invalid key is not tried", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      keyport.mock.setKey(key.apiKey, "invalid");
      const tested = await keyport.request("POST", `/api/v1/api-keys/${key.id}/test`, { token: user.token });
      expect(tested.status, tested.text).toBe(200);
      expect(await keyView(keyport, user, key.id)).toMatchObject({ status: "invalid", isActive: true });

      const { response } = await openAiVia(keyport, user.token).chat.completions.create(chatBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream.map((request) => request.headers.authorization)).toEqual([`Bearer ${platformOpenAiKey}`]);
      const records = await settledUsage(keyport, barrier, user.owner, 1);
      expect(records.map((record) => [record.source, record.keyId, record.status])).toEqual([["platform", null, "ok"]]);
    });

    it("premium with a stored key works for a provider that has no platform key", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "anthropic");
      const { response } = await anthropicVia(keyport, user.token).messages.create(messagesBody(user)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      expect(upstreamRequests(keyport.mock, { marker: user.marker }).map((request) => request.headers["x-api-key"])).toEqual([key.apiKey]);
    });

    it("no platform key and no usable own key: 403 no_key_available, nothing upstream", async () => {
      const premium = await newUser("premium");
      const noKey = await anthropicVia(keyport, premium.token).messages.create(messagesBody(premium)).catch((error: unknown) => error);
      expect(noKey).toBeInstanceOf(Anthropic.PermissionDeniedError);
      expect(noKey).toMatchObject({ status: 403, type: "permission_error", error: { type: "error", error: { type: "permission_error" } } });

      // A community owner's stored key is not used, and there is no platform key to fall back on.
      const community = await newUser("community");
      await storeKey(keyport, community, "anthropic");
      const notAllowed = await anthropicVia(keyport, community.token).messages.create(messagesBody(community)).catch((error: unknown) => error);
      expect(notAllowed).toBeInstanceOf(Anthropic.PermissionDeniedError);
      expect(notAllowed).toMatchObject({ status: 403, message: expect.stringMatching(/platform key, which is not configured for anthropic/) });
      // Adding a key would not help on this plan: the message does not send the user to add one.
      expect((notAllowed as Error).message).not.toMatch(/add your own/i);
      expect((notAllowed as Error).message).toMatch(/Your plan does not use your own API keys\./);
      expect((noKey as Error).message).toMatch(/add your own API key in Settings\./);

      expect(upstreamRequests(keyport.mock, { marker: premium.marker })).toEqual([]);
      expect(upstreamRequests(keyport.mock, { marker: community.marker })).toEqual([]);
      expect(await settledUsage(keyport, barrier, premium.owner, 0)).toEqual([]);
    });
  });

  describe("platform rate limits", () => {
    it("a community owner's 11th platform call in a minute is a 429 in OpenAI's shape; the provider saw 10", async () => {
      const user = await newUser("community");
      const openai = openAiVia(keyport, user.token);
      // Ten calls take well under a second; starting with 5 s left keeps them in one window.
      await startOfQuietWindow(5);
      const windowAtStart = Math.floor(Date.now() / 60_000);

      const remaining: (string | null)[] = [];
      for (let call = 1; call <= 10; call += 1) {
        const { response } = await openai.chat.completions.create(chatBody(user, call)).withResponse();
        expect(response.headers.get("x-keyport-key-source")).toBe("platform");
        expect(response.headers.get("ratelimit-limit")).toBe("10");
        const reset = Number(response.headers.get("ratelimit-reset"));
        expect(reset).toBeGreaterThanOrEqual(1);
        expect(reset).toBeLessThanOrEqual(60);
        remaining.push(response.headers.get("ratelimit-remaining"));
      }
      expect(remaining).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);

      const refusal = await openai.chat.completions.create(chatBody(user, 11)).catch((error: unknown) => error);
      expect(Math.floor(Date.now() / 60_000)).toBe(windowAtStart);
      expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
      if (!(refusal instanceof OpenAI.RateLimitError)) return;
      expect(refusal.error).toEqual({ message: expect.stringContaining("10 requests per minute"), type: "requests", param: null, code: "rate_limit_exceeded" });
      // A community plan does not use the owner's own keys, so the refusal does not suggest adding one.
      expect(refusal.message).not.toMatch(/add your own/i);
      expect(refusal.headers.get("ratelimit-limit")).toBe("10");
      expect(refusal.headers.get("ratelimit-remaining")).toBe("0");
      const reset = refusal.headers.get("ratelimit-reset");
      expect(Number(reset)).toBeGreaterThanOrEqual(1);
      expect(Number(reset)).toBeLessThanOrEqual(60);
      expect(refusal.headers.get("retry-after")).toBe(reset);

      const upstream = upstreamRequests(keyport.mock, { marker: user.marker });
      expect(upstream).toHaveLength(10);
      expect(upstream.some((request) => JSON.stringify(request.body).includes("Call 11 "))).toBe(false);
      // The refused call never reached the provider, so it is not recorded either.
      expect(await settledUsage(keyport, barrier, user.owner, 10)).toHaveLength(10);
    });

    it("a premium owner's 50 calls on their own key are never limited and carry no ratelimit headers", async () => {
      const user = await newUser("premium");
      const key = await storeKey(keyport, user, "openai");
      const openai = openAiVia(keyport, user.token);
      for (let call = 1; call <= 50; call += 1) {
        const { response } = await openai.chat.completions.create(chatBody(user, call)).withResponse();
        expect(response.headers.get("x-keyport-key-source")).toBe("byok");
        for (const name of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"]) {
          expect(response.headers.get(name), name).toBeNull();
        }
      }
      expect(upstreamRequests(keyport.mock, { key: key.apiKey, marker: user.marker })).toHaveLength(50);
    });

    it("own-key calls do not count against the tier's platform limit, however small", async () => {
      // The tight tier allows three platform calls a minute (and a day): fifty own-key calls must still pass.
      const user = await newUser("tight");
      const key = await storeKey(keyport, user, "openai");
      const openai = openAiVia(keyport, user.token);
      for (let call = 1; call <= 50; call += 1) {
        const { response } = await openai.chat.completions.create(chatBody(user, call)).withResponse();
        expect(response.headers.get("x-keyport-key-source")).toBe("byok");
      }
      // With the key switched off, the first platform call still finds the whole allowance left.
      const deactivated = await keyport.request("PATCH", `/api/v1/api-keys/${key.id}`, { token: user.token, body: { isActive: false } });
      expect(deactivated.status, deactivated.text).toBe(200);
      const { response } = await openai.chat.completions.create(chatBody(user, 51)).withResponse();
      expect(response.headers.get("x-keyport-key-source")).toBe("platform");
      expect(response.headers.get("ratelimit-limit")).toBe("3");
      expect(response.headers.get("ratelimit-remaining")).toBe("2");
    });
  });
});
