import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { it as base, describe, expect } from "vitest";
import { cleanEnv, type CliRunner, createCliRunner, createTempDirs, requestJson, startServe } from "./cli-process.js";

const execFileAsync = promisify(execFile);
const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));

const it = base.extend<{ cli: CliRunner; makeDir: () => string }>({
  makeDir: async ({}, use) => {
    const dirs = createTempDirs();
    await use(() => dirs.make());
    dirs.removeAll();
  },
  cli: async ({}, use) => {
    const runner = createCliRunner();
    await use(runner);
    await runner.killAll();
  },
});

/** Runs one printed shell command; `cwd` matters for the SDK one (it imports `openai`). */
async function runPrinted(line: string, cwd: string): Promise<string> {
  const { stdout } = await execFileAsync("sh", ["-c", line], { env: cleanEnv(), cwd, timeout: 30_000 });
  return stdout;
}

describe("npm start -- --demo", () => {
  it("runs the providers simulated in-process; the printed key, SDK call and curl work offline, and the page shows the usage", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    // The providers' URLs in the environment point nowhere: the demo replaces them with its simulator.
    const server = cli.start(["serve", "--demo"], { env: cleanEnv({ PORT: "0" }), cwd });
    const url = (await server.waitFor(/Keyport is running at (http:\/\/[\d.]+:\d+)/))[1] ?? "";
    await server.waitFor(/More tokens:.*\n/);
    const banner = server.stdout();
    expect(banner).toMatch(/Demo mode: OpenAI and Anthropic are simulated at http:\/\/127\.0\.0\.1:\d+; nothing leaves this machine\./);
    expect(existsSync(path.join(cwd, "data", "demo", "keyport.db"))).toBe(true);

    const lines = banner.split("\n").map((line) => line.trim());
    const demoKey = lines.find((line) => /^sk-proj-DEMO-/.test(line)) ?? "";
    const addKey = lines.find((line) => line.startsWith("curl -s -X POST") && line.includes("/api/v1/api-keys")) ?? "";
    const sdkCall = lines.find((line) => line.startsWith("node --input-type=module")) ?? "";
    const curlCall = lines.find((line) => line.startsWith("curl") && line.includes("/openai/v1/chat/completions")) ?? "";
    expect(addKey).toContain(demoKey);

    const created = JSON.parse(await runPrinted(addKey, cwd)) as { status: string; keyHint: string };
    expect(created).toMatchObject({ status: "valid", keyHint: `****...${demoKey.slice(-4)}` });
    // The SDK line runs where the newcomer is: in the repository, which has `openai` installed.
    expect((await runPrinted(sdkCall, REPOSITORY)).trim()).not.toBe("");
    const completion = JSON.parse(await runPrinted(curlCall, cwd)) as { choices: Array<{ message: { content: string } }> };
    expect(completion.choices[0]?.message.content).toBeTruthy();

    // The Settings link opens, and its Usage shows both calls, on the demo user's own key.
    const link = /\n\s+(http:\/\/\S+\/portal\/open\/\S+)/.exec(banner)?.[1] ?? "";
    const opened = await fetch(link, { redirect: "manual" });
    expect(opened.status).toBe(303);
    const cookie = opened.headers.get("set-cookie")?.split(";")[0] ?? "";
    await expect
      .poll(
        async () => {
          const usage = await fetch(`${url}/api/v1/usage?groupBy=key`, { headers: { cookie } });
          const body = (await usage.json()) as { totals: { requests: number }; series: Array<{ group: string }> };
          return [body.totals.requests, body.series.some((row) => row.group === "platform")];
        },
        { timeout: 15_000 },
      )
      .toEqual([2, false]);
    server.child.kill("SIGTERM");
    expect((await server.waitForExit()).code).toBe(0);
  }, 90_000);

  it("is refused in production", async ({ cli, makeDir }) => {
    const result = await cli.run(["serve", "--demo"], { env: cleanEnv({ NODE_ENV: "production", PORT: "0" }), cwd: makeDir() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--demo simulates the providers and is not for production/);
  });
});

describe("keyport portal-link", () => {
  it("prints a one-time link that the running Keyport opens", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const env = cleanEnv({ PORT: "0" });
    const server = await startServe(cli, env, cwd);
    const printed = await cli.run(["portal-link", "--sub", "carol", "--tier", "community"], { env, cwd });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stderr).toMatch(/One-time link for user:carol \(tier community\)/);
    const link = printed.stdout.trim().replace(/^http:\/\/127\.0\.0\.1:0/, server.url);
    const opened = await fetch(link, { redirect: "manual" });
    expect(opened.status).toBe(303);
    const cookie = opened.headers.get("set-cookie")?.split(";")[0] ?? "";
    const current = await fetch(`${server.url}/api/v1/portal-sessions/current`, { headers: { cookie } });
    expect(await current.json()).toMatchObject({ owner: "user:carol", tier: "community" });
    expect((await fetch(link, { redirect: "manual" })).status).toBe(410);
    expect(await requestJson("GET", `${server.url}/healthz`)).toMatchObject({ status: 200 });
  }, 60_000);

  it.for([
    [["portal-link"], /usage: keyport portal-link --sub/],
    [["portal-link", "--sub", "not a sub"], /--sub must match/],
    [["portal-link", "--sub", "x", "--tier", "gold"], /--tier gold is not a configured tier/],
    [["portal-link", "--sub", "x", "--return-url", "javascript:alert(1)"], /--return-url must be an http\(s\) URL/],
  ] as const)("refuses %j with exit code 2", async ([args, message], { cli, makeDir }) => {
    const result = await cli.run(args, { env: cleanEnv(), cwd: makeDir() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe("");
  });
});
