import { describe, expect, it } from "vitest";
import type { Env } from "./config-schema.js";
import { ConfigError, loadConfig } from "./load-config.js";
import { parseDurationList } from "./notifications-config.js";

const BASE: Env = { ENCRYPTION_KEY: "ab".repeat(32), KEYPORT_JWT_SECRET: "s".repeat(32) };
const SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("notification configuration", () => {
  it("defaults: no operator webhook, no email, a retry schedule of more than a day, private addresses refused", () => {
    const { notifications } = loadConfig(BASE);
    expect(notifications.operatorWebhook).toBeUndefined();
    expect(notifications.smtp).toBeUndefined();
    expect(notifications.retryScheduleMs).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(notifications.retryScheduleMs.reduce((sum, delay) => sum + delay, 0)).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(notifications.allowPrivateAddresses).toBe(false);
    expect(notifications.webhookTimeoutMs).toBe(10_000);
    expect(notifications.pollIntervalMs).toBe(1_000);
  });

  it("reads the operator webhook, SMTP and the schedule, and keeps the secrets out of serialised config", () => {
    const config = loadConfig({
      ...BASE,
      KEYPORT_WEBHOOK_URL: "https://platform.example/keyport-events",
      KEYPORT_WEBHOOK_SECRET: SECRET,
      KEYPORT_WEBHOOK_RETRY_SCHEDULE: " 500ms, 2s ,1m,1h ",
      KEYPORT_WEBHOOK_ALLOW_PRIVATE: "true",
      SMTP_URL: "smtps://mailer:smtp-password-canary@smtp.example:465",
      SMTP_FROM: "Keyport <alerts@example.com>",
    });
    expect(config.notifications.operatorWebhook?.url).toBe("https://platform.example/keyport-events");
    expect(config.notifications.operatorWebhook?.secret.reveal()).toBe(SECRET);
    expect(config.notifications.retryScheduleMs).toEqual([500, 2_000, 60_000, 3_600_000]);
    expect(config.notifications.allowPrivateAddresses).toBe(true);
    expect(config.notifications.smtp?.from).toBe("Keyport <alerts@example.com>");
    const text = JSON.stringify(config);
    expect(text).not.toContain(SECRET.slice(6));
    expect(text).not.toContain("smtp-password-canary");
  });

  it.each([
    [{ KEYPORT_WEBHOOK_URL: "https://platform.example/" }, "KEYPORT_WEBHOOK_URL and KEYPORT_WEBHOOK_SECRET go together"],
    [{ KEYPORT_WEBHOOK_SECRET: SECRET }, "KEYPORT_WEBHOOK_URL and KEYPORT_WEBHOOK_SECRET go together"],
    [{ KEYPORT_WEBHOOK_URL: "ftp://platform.example/", KEYPORT_WEBHOOK_SECRET: SECRET }, "KEYPORT_WEBHOOK_URL must be an http:// or https:// URL"],
    [{ KEYPORT_WEBHOOK_URL: "https://platform.example/", KEYPORT_WEBHOOK_SECRET: "plain-shared-secret" }, "KEYPORT_WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes"],
    [{ KEYPORT_WEBHOOK_URL: "https://platform.example/", KEYPORT_WEBHOOK_SECRET: `whsec_${Buffer.alloc(16).toString("base64")}` }, "KEYPORT_WEBHOOK_SECRET must be whsec_"],
    [{ KEYPORT_WEBHOOK_URL: "https://platform.example/", KEYPORT_WEBHOOK_SECRET: "whsec_not*base64" }, "KEYPORT_WEBHOOK_SECRET must be whsec_"],
    [{ KEYPORT_WEBHOOK_RETRY_SCHEDULE: "5s,5 minutes" }, 'KEYPORT_WEBHOOK_RETRY_SCHEDULE entry "5 minutes" is not a delay like 5s, 5m or 2h'],
    [{ KEYPORT_WEBHOOK_RETRY_SCHEDULE: "5s,0s" }, 'KEYPORT_WEBHOOK_RETRY_SCHEDULE entry "0s" must be more than 0'],
    [{ KEYPORT_WEBHOOK_RETRY_SCHEDULE: "8d" }, "KEYPORT_WEBHOOK_RETRY_SCHEDULE entry"],
    [{ KEYPORT_WEBHOOK_ALLOW_PRIVATE: "yes" } as Record<string, string> as Env, "KEYPORT_WEBHOOK_ALLOW_PRIVATE"],
    [{ KEYPORT_WEBHOOK_TIMEOUT_MS: "50" }, "KEYPORT_WEBHOOK_TIMEOUT_MS must be an integer from 100 to 120000"],
    [{ SMTP_URL: "https://smtp.example" }, "SMTP_URL must be an smtp:// or smtps:// URL"],
    [{ SMTP_URL: "smtp://smtp.example:587" }, "SMTP_FROM is required with SMTP_URL"],
    [{ SMTP_URL: "smtp://smtp.example:587", SMTP_FROM: "nobody" }, "SMTP_FROM must be one address"],
    [{ SMTP_FROM: "alerts@example.com" }, "SMTP_FROM is set but SMTP_URL is not"],
  ] satisfies [Env, string][])("refuses %j with a message naming the variable", (env, message) => {
    const problems = problemsOf(env);
    expect(problems.some((problem) => problem.startsWith(message)), problems.join("\n")).toBe(true);
  });

  it("never quotes a secret in its messages", () => {
    const problems = problemsOf({ KEYPORT_WEBHOOK_URL: "https://platform.example/", KEYPORT_WEBHOOK_SECRET: "whsec_canary-secret-value", SMTP_URL: "smtp://u:canary-password@/" });
    expect(problems.join("\n")).not.toContain("canary");
  });

  it("parses delay lists", () => {
    expect(parseDurationList("5s,5m,30m,2h,5h,10h,10h")).toEqual({ ok: true, valuesMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000] });
    expect(parseDurationList("")).toMatchObject({ ok: false });
    expect(parseDurationList(Array.from({ length: 31 }, () => "1s").join(","))).toEqual({ ok: false, message: "has more than 30 entries" });
  });
});
