import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { anthropicKey, openAiKey } from "../support/keys.js";
import { describeWithBrowser, launchBrowser, newContext, openPortal, type PortalStack, screenshot, startPortalStack } from "./browser-support.js";

/**
 * The Settings page in a real browser (Debian's Chromium driven by playwright-core), served by a
 * real `keyport serve` whose providers are `keyport mock-provider`. Every test uses its own owner.
 */
describeWithBrowser("the Settings page in a browser", () => {
  let stack: PortalStack;
  let browser: Browser;
  let sequence = 0;

  beforeAll(async () => {
    stack = await startPortalStack();
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** A new owner's Settings page in a fresh browser profile. */
  async function openAs(options: { tier?: string; width?: number } = {}) {
    sequence += 1;
    const sub = `browser-${sequence}-${Date.now().toString(36)}`;
    const context = await newContext(browser, options.width);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    await openPortal(stack, page, { sub, ...(options.tier === undefined ? {} : { tier: options.tier }) });
    return { sub, page, context, problems };
  }

  /** A key the mock provider accepts (or treats as `behaviour`). */
  async function providerKey(provider: "openai" | "anthropic" = "openai", behaviour: "valid" | "no_credits" | "invalid" = "valid") {
    const key = provider === "openai" ? openAiKey() : anthropicKey();
    await stack.setMockKey(key, behaviour);
    return key;
  }

  async function addKey(page: Page, options: { key: string; label: string; provider?: "OpenAI" | "Anthropic"; activate?: boolean }) {
    const form = page.getByRole("region", { name: "Add a key" });
    await form.getByLabel("Provider").selectOption({ label: options.provider ?? "OpenAI" });
    await form.getByLabel("API key").fill(options.key);
    await form.getByLabel("Label (optional)").fill(options.label);
    if (options.activate === true) await form.getByLabel(/Make it the active/).check();
    await form.getByRole("button", { name: "Save key" }).click();
    await expect.poll(() => page.getByRole("listitem", { name: options.label }).count()).toBe(1);
  }

  const keyCard = (page: Page, label: string) => page.getByRole("listitem", { name: label });

  /** Everything a script in the page can read: the DOM with input values, and both storages. */
  async function everythingReadable(page: Page): Promise<string> {
    // A string, not a function: this runs in the page, and the tests are compiled without DOM types.
    return page.evaluate(`(() => {
      const values = [...document.querySelectorAll("input, textarea, select")].map((element) => element.value);
      const storage = (store) => Object.keys(store).map((name) => name + "=" + store.getItem(name));
      return [document.documentElement.outerHTML, ...values, ...storage(localStorage), ...storage(sessionStorage), document.cookie].join("\\n");
    })()`);
  }

  it("opens from a portal link into the owner's page, with an HttpOnly session the page's scripts cannot read", async () => {
    const { page, context, problems } = await openAs();
    expect(new URL(page.url()).pathname).toBe("/portal/");
    await expect.poll(() => page.getByRole("heading", { name: "API keys and usage" }).isVisible()).toBe(true);
    await page.getByText("Acme AI").first().waitFor();
    expect(await page.getByRole("link", { name: "Back to Acme AI" }).getAttribute("href")).toBe("https://app.example.com/settings");
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: "keyport_session", httpOnly: true, sameSite: "Strict", path: "/" });
    expect(await page.evaluate("document.cookie")).toBe("");
    expect(problems).toEqual([]);
    await context.close();
  });

  it("adds a key (trimmed as pasted) and lists it with hint and status; the key is then nowhere the page can read", async () => {
    const { page, context } = await openAs();
    const key = await providerKey();
    const form = page.getByRole("region", { name: "Add a key" });
    await form.getByLabel("API key").fill("sk-ant-api03-x");
    await form.getByText("This looks like an Anthropic key").waitFor();
    await form.getByLabel("API key").fill(`  ${key}\n`);
    await form.getByText("Looks like an OpenAI key.").waitFor();
    await form.getByLabel("Label (optional)").fill("Production");
    await form.getByRole("button", { name: "Save key" }).click();

    const card = keyCard(page, "Production");
    await card.waitFor();
    await card.getByText(`****...${key.slice(-4)}`).waitFor();
    await card.getByText("Valid", { exact: true }).waitFor();
    await card.getByText("Active", { exact: true }).waitFor();
    await page.getByRole("status").filter({ hasText: "Saved Production" }).waitFor();
    expect(await form.getByLabel("API key").inputValue()).toBe("");
    expect(await page.getByRole("region", { name: "Which key pays" }).textContent()).toContain(`Your own key (Production, ****...${key.slice(-4)})`);

    const readable = await everythingReadable(page);
    expect(readable).not.toContain(key);
    expect(readable).not.toContain(key.slice(8, 24));
    expect(stack.output()).not.toContain(key);
    await context.close();
  });

  it("keeps what was typed when saving fails, and says why", async () => {
    const { page, context } = await openAs();
    const key = await providerKey("openai", "invalid");
    const form = page.getByRole("region", { name: "Add a key" });
    await form.getByLabel("API key").fill(key);
    await form.getByLabel("Label (optional)").fill("Rejected one");
    await form.getByRole("button", { name: "Save key" }).click();
    await form.getByRole("alert").waitFor();
    expect(await form.getByRole("alert").textContent()).toMatch(/reject|invalid|incorrect/i);
    expect(await form.getByLabel("API key").inputValue()).toBe(key);
    expect(await form.getByLabel("Label (optional)").inputValue()).toBe("Rejected one");
    await context.close();
  });

  it("tests a key and shows ✅ valid, ⚠️ no credits and the reason", async () => {
    const { page, context } = await openAs();
    const key = await providerKey();
    await addKey(page, { key, label: "Production" });
    const card = keyCard(page, "Production");

    await stack.setMockKey(key, "no_credits");
    await card.getByRole("button", { name: "Test Production" }).click();
    await card.getByText(/Test result: No credits/).waitFor();
    await expect.poll(() => card.getByText("No credits", { exact: true }).count()).toBe(1);
    expect(await card.locator(".key-reason").textContent()).toMatch(/quota|credit/i);

    await stack.setMockKey(key, "valid");
    await card.getByRole("button", { name: "Test Production" }).click();
    await card.getByText("Test result: Valid").waitFor();
    await expect.poll(() => card.getByText("Valid", { exact: true }).count()).toBe(1);
    await context.close();
  });

  it("makes another key active, and says which key pays", async () => {
    const { page, context } = await openAs();
    await addKey(page, { key: await providerKey(), label: "Production" });
    const backup = await providerKey();
    await addKey(page, { key: backup, label: "Backup" });
    expect(await keyCard(page, "Backup").getByText("Active", { exact: true }).count()).toBe(0);

    await keyCard(page, "Backup").getByRole("button", { name: "Make Backup active" }).click();
    await expect.poll(() => keyCard(page, "Backup").getByText("Active", { exact: true }).count()).toBe(1);
    expect(await keyCard(page, "Production").getByText("Active", { exact: true }).count()).toBe(0);
    expect(await page.getByRole("region", { name: "Which key pays" }).textContent()).toContain(`Your own key (Backup, ****...${backup.slice(-4)})`);
    await page.getByRole("status").filter({ hasText: "Backup is now the active key" }).waitFor();
    await context.close();
  });

  it("replaces a key in place and renames it", async () => {
    const { page, context } = await openAs();
    await addKey(page, { key: await providerKey(), label: "Production" });
    const card = keyCard(page, "Production");
    const next = await providerKey();
    await card.getByRole("button", { name: "Replace Production" }).click();
    await card.getByLabel("New API key for Production").fill(next);
    await card.getByRole("button", { name: "Replace key" }).click();
    await expect.poll(() => card.getByText(`****...${next.slice(-4)}`).count()).toBe(1);
    expect(await card.getByLabel("New API key for Production").count()).toBe(0);
    expect(await everythingReadable(page)).not.toContain(next);

    await card.getByRole("button", { name: "Rename Production" }).click();
    await card.getByLabel("New name for Production").fill("Main");
    await card.getByRole("button", { name: "Save name" }).click();
    await keyCard(page, "Main").waitFor();
    await context.close();
  });

  it("deletes a key after a confirmation that names it", async () => {
    const { page, context } = await openAs();
    const key = await providerKey();
    await addKey(page, { key, label: "Old key" });
    await keyCard(page, "Old key").getByRole("button", { name: "Delete Old key" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete Old key?" });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`“Old key” (****...${key.slice(-4)})`);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await keyCard(page, "Old key").count()).toBe(1);

    await keyCard(page, "Old key").getByRole("button", { name: "Delete Old key" }).click();
    await dialog.getByRole("button", { name: "Delete key" }).click();
    await expect.poll(() => keyCard(page, "Old key").count()).toBe(0);
    await page.getByText("No OpenAI keys yet.").waitFor();
    await page.getByRole("status").filter({ hasText: "Deleted Old key" }).waitFor();
    await context.close();
  });

  it("shows the chart, the tables by model and by key, and the CSV after gateway calls", async () => {
    const { page, context, sub } = await openAs();
    await addKey(page, { key: await providerKey(), label: "Production" });
    const openai = new OpenAI({ baseURL: `${stack.url}/openai/v1`, apiKey: await stack.token(sub), maxRetries: 0 });
    for (const model of ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]) {
      await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Hello from the browser test" }] });
    }

    await page.getByRole("tab", { name: "Usage" }).click();
    const byModel = page.getByRole("region", { name: "By model" });
    // Usage is recorded in batches: reload the panel until the calls are in.
    await expect
      .poll(
        async () => {
          await page.getByLabel("Period", { exact: true }).selectOption({ label: "Last 7 days" });
          await page.getByLabel("Period", { exact: true }).selectOption({ label: "This month" });
          return byModel.getByRole("row").count();
        },
        { timeout: 15_000 },
      )
      .toBe(3);
    expect(await byModel.getByRole("rowheader", { name: /^gpt-4o-mini/ }).count()).toBe(1);
    const byKey = page.getByRole("region", { name: "By key" });
    expect(await byKey.getByRole("rowheader").first().textContent()).toContain("Production (OpenAI, ****...");
    expect(await page.getByRole("img").first().getAttribute("aria-label")).toMatch(/Estimated cost per day from .* in all/);
    expect(await page.getByRole("region", { name: "Totals for the period" }).textContent()).toContain("3 requests");

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download CSV" }).click()]);
    const csv = readFileSync((await download.path()) ?? "", "utf8");
    expect(csv.split("\n")[0]).toMatch(/^day,requests,/);
    expect(csv).toMatch(/\n\d{4}-\d{2}-\d{2},3,/);
    await context.close();
  });

  it("sets a budget and an alert on the Limits panel, shows the API's message next to its field, and this month's spend against the cap", async () => {
    const { page, context, sub } = await openAs();
    await page.getByRole("tab", { name: "Limits" }).click();
    await page.getByRole("heading", { name: "This month" }).waitFor();
    await page.getByText(/No spending cap applies to you yet/).waitFor();
    const budget = page.getByLabel("Monthly budget (USD)");
    // The page's own check: nothing is sent.
    await budget.fill("-5");
    await page.getByRole("button", { name: "Save limits" }).click();
    await page.getByText(/Enter an amount in US dollars/).waitFor();
    // The API's check: its message appears next to the field it names, and what was typed stays.
    await budget.fill("25");
    await page.getByLabel("Alert threshold (USD)").fill("20");
    await page.getByLabel("Webhook URL").fill("https://127.0.0.1/hooks");
    await page.getByRole("button", { name: "Save limits" }).click();
    const webhookError = page.locator(".field").filter({ has: page.getByLabel("Webhook URL") }).getByRole("alert");
    await webhookError.waitFor();
    expect(await webhookError.textContent()).toMatch(/webhookUrl/);
    expect(await budget.inputValue()).toBe("25");
    await page.getByLabel("Webhook URL").fill("");
    await page.getByRole("button", { name: "Save limits" }).click();
    await page.getByRole("status").filter({ hasText: "Limits saved." }).waitFor();
    const stored = (await (await fetch(`${stack.url}/api/v1/limits`, { headers: { authorization: `Bearer ${await stack.token(sub)}` } })).json()) as {
      monthlyBudgetUsd: number;
      notifyThresholdUsd: number;
      webhookUrl: string | null;
    };
    expect(stored).toMatchObject({ monthlyBudgetUsd: 25, notifyThresholdUsd: 20, webhookUrl: null });
    // The budget now shows as a cap with what is left of it.
    await page.getByText("Your monthly budget").waitFor();
    await page.getByText(/\$25\.00 left this month/).waitFor();
    // A new signing secret replaces the one shown.
    const secretField = page.getByLabel("Webhook signing secret");
    const before = await secretField.inputValue();
    expect(before).toMatch(/^whsec_/);
    await page.getByRole("button", { name: "New secret" }).click();
    await page.getByRole("status").filter({ hasText: "New signing secret made" }).waitFor();
    await expect.poll(() => secretField.inputValue()).not.toBe(before);
    expect(await secretField.inputValue()).toMatch(/^whsec_/);
    await context.close();
  });

  it("adds a key with the keyboard alone, with a visible focus ring", async () => {
    const { page, context } = await openAs();
    const key = await providerKey("anthropic");
    const focused = () =>
      page.evaluate<string>(`(() => {
        const element = document.activeElement;
        return element?.getAttribute("aria-label") ?? element?.labels?.[0]?.textContent ?? element?.textContent ?? "";
      })()`);
    async function tabTo(name: RegExp) {
      for (let presses = 0; presses < 40; presses += 1) {
        await page.keyboard.press("Tab");
        if (name.test(await focused())) return;
      }
      throw new Error(`Tab never reached ${name}`);
    }
    await tabTo(/^Provider$/);
    const outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle");
    expect(outline).not.toBe("none");
    await page.keyboard.press("ArrowDown");
    expect(await page.getByLabel("Provider").inputValue()).toBe("anthropic");
    await page.keyboard.press("Tab");
    await page.keyboard.type(key);
    await page.keyboard.press("Tab");
    await page.keyboard.type("Keyboard");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Space");
    await page.keyboard.press("Tab");
    expect(await focused()).toBe("Save key");
    await page.keyboard.press("Enter");
    await keyCard(page, "Keyboard").waitFor();
    expect(await keyCard(page, "Keyboard").getByText("Active", { exact: true }).count()).toBe(1);

    // The tabs follow the arrow keys.
    await page.getByRole("tab", { name: "API keys" }).focus();
    await page.keyboard.press("ArrowRight");
    expect(await page.getByRole("tab", { name: "Usage" }).getAttribute("aria-selected")).toBe("true");
    await context.close();
  });

  it("refuses a reused or unknown link with a page that says so and links back", async () => {
    const link = await stack.operator.portalSessions.create({ sub: "reuse-user", returnUrl: "https://app.example.com/settings" });
    const first = await newContext(browser);
    await (await first.newPage()).goto(link.url);
    const second = await newContext(browser);
    const page = await second.newPage();
    const response = await page.goto(link.url);
    expect(response?.status()).toBe(410);
    await page.getByRole("heading", { name: "This link was already used" }).waitFor();
    expect(await page.getByRole("link", { name: "Back to the app" }).getAttribute("href")).toBe("https://app.example.com/settings");
    expect(await second.cookies()).toEqual([]);
    const unknown = await page.goto(`${stack.url}/portal/open/${"x".repeat(43)}`);
    expect(unknown?.status()).toBe(404);
    await page.getByRole("heading", { name: "This link is not valid" }).waitFor();
    // Without a session the page itself says how to get back in.
    await page.goto(`${stack.url}/portal/`);
    await page.getByRole("heading", { name: "Your Settings session has ended" }).waitFor();
    await first.close();
    await second.close();
  });

  it("one owner's session cannot read or change another owner's keys", async () => {
    const alice = await openAs();
    await addKey(alice.page, { key: await providerKey(), label: "Alice's key" });
    const aliceKeyId = await alice.page.evaluate(async () => ((await (await fetch("/api/v1/api-keys")).json()) as { keys: { id: string }[] }).keys[0]?.id ?? "");
    expect(aliceKeyId).toMatch(/^key_/);

    const bob = await openAs();
    await bob.page.getByText("No OpenAI keys yet.").waitFor();
    const attempts = await bob.page.evaluate(async (id) => {
      const session = (await (await fetch("/api/v1/portal-sessions/current")).json()) as { csrfToken: string };
      const headers = { "x-csrf-token": session.csrfToken };
      const read = await fetch(`/api/v1/api-keys/${id}`);
      const removed = await fetch(`/api/v1/api-keys/${id}`, { method: "DELETE", headers });
      const tested = await fetch(`/api/v1/api-keys/${id}/test`, { method: "POST", headers });
      return [read.status, removed.status, tested.status];
    }, aliceKeyId);
    expect(attempts).toEqual([404, 404, 404]);
    await alice.page.reload();
    await keyCard(alice.page, "Alice's key").waitFor();
    await alice.context.close();
    await bob.context.close();
  });

  it("refuses a write without the CSRF token, and a cross-site form post changes nothing", async () => {
    const { page, context, sub } = await openAs();
    const key = await providerKey();
    const status = await page.evaluate(async (apiKey) => {
      const response = await fetch("/api/v1/api-keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ provider: "openai", apiKey }) });
      return response.status;
    }, key);
    expect(status).toBe(403);

    // Another site (localhost is another site than 127.0.0.1) posts to Keyport in the same browser.
    const attacker = await startSite({
      "/": `<form id="f" method="POST" action="${stack.url}/api/v1/api-keys" enctype="text/plain"><input name='{"provider":"openai","apiKey":"${key}","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`,
      "/fetch": `<script>fetch("${stack.url}/api/v1/api-keys", { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "text/plain" }, body: JSON.stringify({ provider: "openai", apiKey: "${key}" }) }).then(() => { document.title = "sent"; }, () => { document.title = "sent"; })</script>`,
    });
    try {
      const other = await context.newPage();
      await other.goto(`${attacker.url}/`);
      await other.waitForLoadState("load");
      await other.goto(`${attacker.url}/fetch`);
      await expect.poll(() => other.title()).toBe("sent");
    } finally {
      await attacker.close();
    }
    const listed = await fetch(`${stack.url}/api/v1/api-keys`, { headers: { authorization: `Bearer ${await stack.token(sub)}` } });
    expect(((await listed.json()) as { keys: unknown[] }).keys).toEqual([]);
    await context.close();
  });

  it("refuses to be framed by an origin not in KEYPORT_FRAME_ANCESTORS", async () => {
    const site = await startSite({});
    const framed = await startPortalStack({ KEYPORT_FRAME_ANCESTORS: "https://listed.example.com" });
    try {
      const context = await newContext(browser);
      const page = await context.newPage();
      for (const target of [stack.url, framed.url]) {
        site.pages["/frame"] = `<h1>Evil</h1><iframe id="portal" src="${target}/portal/"></iframe>`;
        const blocked = page.waitForEvent("console", { predicate: (message) => /frame-ancestors/.test(message.text()), timeout: 10_000 });
        await page.goto(`${site.url}/frame`);
        expect((await blocked).text()).toMatch(target === stack.url ? /frame-ancestors 'none'/ : /frame-ancestors https:\/\/listed\.example\.com/);
        const frame = page.frames().find((candidate) => candidate !== page.mainFrame());
        const content = await frame?.evaluate<string>("document.body ? document.body.innerText : ''").catch(() => "");
        expect(content ?? "").not.toMatch(/API keys|Settings/);
      }
      await context.close();
    } finally {
      await framed.stop();
      await site.close();
    }
  });

  it("writes screenshots of each panel at 1280 and 360 pixels", { timeout: 120_000 }, async () => {
    for (const width of [1280, 360]) {
      const { page, context, sub } = await openAs({ width });
      await addKey(page, { key: await providerKey(), label: "Production" });
      await addKey(page, { key: await providerKey(), label: "Staging" });
      await addKey(page, { key: await providerKey("anthropic"), label: "Claude", provider: "Anthropic" });
      const openai = new OpenAI({ baseURL: `${stack.url}/openai/v1`, apiKey: await stack.token(sub), maxRetries: 0 });
      for (const model of ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]) {
        await openai.chat.completions.create({ model, messages: [{ role: "user", content: `Screenshot call with ${model}` }] });
      }
      // Usage is written in batches: wait until the key's totals have it, then show the page again.
      await expect
        .poll(async () => (await stack.keys(sub)).find((key) => key.label === "Production")?.totalRequests, { timeout: 15_000 })
        .toBe(4);
      await page.reload();
      await keyCard(page, "Staging").getByRole("button", { name: "Test Staging" }).click();
      await keyCard(page, "Staging").getByText("Test result: Valid").waitFor();
      await screenshot(page, `keys-${width}`);

      await page.getByRole("tab", { name: "Usage" }).click();
      await expect.poll(() => page.getByRole("region", { name: "By model" }).getByRole("row").count(), { timeout: 15_000 }).toBe(3);
      await screenshot(page, `usage-${width}`);

      await page.getByRole("tab", { name: "Limits" }).click();
      await page.getByLabel("Monthly budget (USD)").waitFor();
      await page.getByRole("heading", { name: "This month" }).waitFor();
      await screenshot(page, `limits-${width}`);

      await page.getByRole("tab", { name: "Activity" }).click();
      await page.getByRole("region", { name: "Activity" }).getByRole("listitem").first().waitFor();
      await screenshot(page, `activity-${width}`);
      await context.close();
    }
  });

  it("takes the platform's look: dark mode, its accent colour and product name", async () => {
    sequence += 1;
    const context = await newContext(browser);
    const page = await context.newPage();
    await openPortal(stack, page, { sub: `themed-${sequence}`, tier: "community", theme: { mode: "dark", accentColor: "#ff7a1a", productName: "Orbit" } });
    expect(await page.title()).toBe("API keys settings · Orbit");
    expect(await page.evaluate("document.documentElement.dataset.theme")).toBe("dark");
    await page.getByRole("button", { name: "Save key" }).waitFor();
    const button = await page.evaluate(`getComputedStyle(document.querySelector("button[type=submit].button-primary")).backgroundColor`);
    expect(button).toBe("rgb(255, 122, 26)");
    // A community plan: the page says the platform pays, and why.
    expect(await page.getByRole("region", { name: "Which key pays" }).textContent()).toContain("Your plan (community) uses the platform's keys.");
    await screenshot(page, "keys-dark-1280");
    await context.close();
  });
});

/** A small site on `localhost` (another site than Keyport's 127.0.0.1), serving the given pages. */
async function startSite(pages: Record<string, string>): Promise<{ url: string; pages: Record<string, string>; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const body = pages[request.url ?? "/"];
    response.writeHead(body === undefined ? 404 : 200, { "content-type": "text/html; charset=utf-8" });
    response.end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    pages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
