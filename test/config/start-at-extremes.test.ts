import { afterEach, describe, expect, it } from "vitest";
import { envSchema, integerSettingRanges } from "../../src/config/config-schema.js";
import { signDevToken } from "../../src/auth/dev-token.js";
import { openAiVia, startGateway, type GatewayKeyport } from "../gateway/gateway-support.js";
import { openAiKey } from "../support/keys.js";

/**
 * Configuration validation is the one place that decides: every value it accepts must start the
 * service and serve calls. Each integer setting, found in the schema, is set to the smallest and
 * then the largest value it accepts.
 */

const settings = Object.entries(envSchema.shape).flatMap(([name, schema]) => {
  const range = integerSettingRanges.get(schema);
  return range === undefined ? [] : [{ name, ...range }];
});

/** Every integer setting at one end of its range. */
function envAt(end: "min" | "max"): Record<string, string> {
  return Object.fromEntries(settings.map((setting) => [setting.name, String(setting[end])]));
}

describe("start with every integer setting at the end of its range", () => {
  let keyport: GatewayKeyport | undefined;
  afterEach(async () => {
    await keyport?.close();
    keyport = undefined;
  });

  it.each(["min", "max"] as const)("starts at the %s of every range and serves the API and the gateway", async (end) => {
    keyport = await startGateway({ env: envAt(end) });
    const { verifier, maxTtlSeconds } = keyport.config.jwt;
    if (verifier.kind !== "secret") throw new Error("the harness signs with KEYPORT_JWT_SECRET");
    // A token within the configured lifetime, however short (KEYPORT_JWT_MAX_TTL_SECONDS at its minimum).
    const token = await signDevToken({
      secret: verifier.secret,
      algorithm: verifier.algorithm,
      sub: `extremes-${end}`,
      tier: "premium",
      expiresInSeconds: Math.min(3600, maxTtlSeconds - 5),
    });
    const user = { token };

    const apiKey = openAiKey();
    keyport.mock.setKey(apiKey, "valid");
    const created = await keyport.request("POST", "/api/v1/api-keys", { token: user.token, body: { provider: "openai", apiKey } });
    expect(created.status, created.text).toBe(201);

    const response = await openAiVia(keyport, user.token)
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .withResponse()
      .then(({ response: raw }) => raw.status)
      // The smallest upstream timeouts (100 ms) may expire on a busy machine: a provider-shaped
      // 504 is a served call too; anything else (a crash, a 500) is not.
      .catch((error: { status?: number }) => error.status);
    expect([200, 504]).toContain(response);
  });
});
