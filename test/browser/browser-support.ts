import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { describe, it } from "vitest";
import { signDevToken } from "../../src/auth/dev-token.js";
import { createKeyportClient } from "../../src/client/index.js";
import { redacted } from "../../src/lib/redacted.js";
import { cleanEnv, type CliProcess, type CliRunner, createCliRunner } from "../cli/cli-process.js";

/** Debian's chromium package (`apt-get install -y chromium`), or CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Where screenshots go: gitignored, kept after the run for people to look at. */
export const SCREENSHOT_DIR = path.resolve("test-results", "portal");

/**
 * Registers a browser suite when Chromium is installed. Without it the suite fails under
 * `CI=true` and is skipped with a loud warning elsewhere, like the database suites.
 */
export function describeWithBrowser(name: string, body: () => void): void {
  if (existsSync(CHROMIUM_PATH)) {
    describe(name, body);
    return;
  }
  if (process.env.CI === "true") {
    describe(name, () => {
      it("has Chromium to test with", () => {
        throw new Error(`Chromium is required when CI=true: ${CHROMIUM_PATH} is missing (apt-get install -y chromium)`);
      });
    });
    return;
  }
  console.warn(`\n!!! Chromium not found at ${CHROMIUM_PATH}: browser tests SKIPPED (apt-get install -y chromium) !!!\n`);
  describe.skip(name, body);
}

export const ADMIN_TOKEN = "operator-token-for-browser-tests-0123456789";

/** A real Keyport (`keyport serve`) with `keyport mock-provider` as both providers, as processes. */
export type PortalStack = {
  url: string;
  mockUrl: string;
  /** The operator's client (KEYPORT_ADMIN_TOKEN). */
  operator: ReturnType<typeof createKeyportClient>;
  /** Tells the mock provider how to treat a key. */
  setMockKey(key: string, behaviour: "valid" | "invalid" | "no_credits" | "rate_limited"): Promise<void>;
  /** A JWT for `sub` (the platform backend's view of that user). */
  token(sub: string, tier?: string): Promise<string>;
  /** `sub`'s keys, read with their JWT. */
  keys(sub: string): Promise<{ label: string; totalRequests: number }[]>;
  /** Keyport's output so far (for checks that a key never appeared). */
  output(): string;
  stop(): Promise<void>;
};

export async function startPortalStack(extraEnv: Record<string, string> = {}): Promise<PortalStack> {
  const cli: CliRunner = createCliRunner();
  const cwd = mkdtempSync(path.join(tmpdir(), "keyport-browser-"));
  try {
    const mock = cli.start(["mock-provider", "--port", "0"], { env: cleanEnv(), cwd });
    const mockUrl = (await mock.waitFor(/listening on (http:\/\/[\d.]+:\d+)/))[1] ?? "";
    const jwtSecret = randomBytes(48).toString("base64url");
    const env = cleanEnv({
      PORT: "0",
      KEYPORT_DATA_DIR: path.join(cwd, "data"),
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: jwtSecret,
      KEYPORT_ADMIN_TOKEN: ADMIN_TOKEN,
      OPENAI_BASE_URL: `${mockUrl}/v1`,
      ANTHROPIC_BASE_URL: mockUrl,
      KEYPORT_KEY_CHECKS_PER_MINUTE: "1000",
      LOG_LEVEL: "warn",
      ...extraEnv,
    });
    const server: CliProcess = cli.start(["serve"], { env, cwd });
    const url = (await server.waitFor(/Keyport is running at (http:\/\/[\d.]+:\d+)/))[1] ?? "";
    await server.waitFor(/More tokens:.*\n/);
    return {
      url,
      mockUrl,
      operator: createKeyportClient({ baseUrl: url, token: ADMIN_TOKEN }),
      async setMockKey(key, behaviour) {
        const response = await fetch(`${mockUrl}/__mock/keys`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ key, behaviour }),
        });
        if (response.status !== 204) throw new Error(`mock key: ${response.status}`);
      },
      token: (sub, tier = "premium") => signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub, tier }),
      async keys(sub) {
        const client = createKeyportClient({ baseUrl: url, token: () => signDevToken({ secret: redacted(jwtSecret), algorithm: "HS256", sub, tier: "premium" }) });
        return (await client.apiKeys.list()).keys;
      },
      output: () => cli.allOutput(),
      async stop() {
        await cli.killAll();
        rmSync(cwd, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await cli.killAll();
    rmSync(cwd, { recursive: true, force: true });
    throw error;
  }
}

export async function launchBrowser(): Promise<Browser> {
  // As root (CI containers) Chromium refuses to start with its sandbox on.
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ["--no-sandbox"] });
}

/** A fresh browser profile (its own cookies) at a given width. */
export async function newContext(browser: Browser, width = 1280): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width, height: width >= 1000 ? 900 : 780 }, reducedMotion: "reduce" });
}

/** Opens a new portal link for `sub` in `page`, as a user following their platform's Settings button. */
export async function openPortal(
  stack: PortalStack,
  page: Page,
  options: { sub: string; tier?: string; theme?: { mode?: "light" | "dark"; accentColor?: string; productName?: string } },
): Promise<void> {
  const link = await stack.operator.portalSessions.create({
    sub: options.sub,
    tier: options.tier ?? "premium",
    returnUrl: "https://app.example.com/settings",
    theme: options.theme ?? { productName: "Acme AI" },
  });
  await page.goto(link.url);
  await page.getByRole("tab", { name: "API keys" }).waitFor();
}

/** Writes `page` as a PNG under test-results/portal/. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}
