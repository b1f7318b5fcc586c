import { describe, expect, it } from "vitest";
import type { MockProviderCommandIo } from "./mock-provider.js";
import { runMockProviderCommand } from "./mock-provider.js";

function captureIo(untilStopped: () => Promise<void> = () => Promise.resolve()) {
  const out: string[] = [];
  const err: string[] = [];
  const io: MockProviderCommandIo = {
    out: (text) => out.push(text),
    err: (text) => err.push(text),
    untilStopped,
  };
  return { io, out, err };
}

describe("runMockProviderCommand", () => {
  it("prints usage for --help", async () => {
    const { io, out } = captureIo();
    expect(await runMockProviderCommand(["--help"], io)).toBe(0);
    expect(out.join("")).toMatch(/usage: keyport mock-provider/);
  });

  it.each([
    [["--port", "70000"], /--port/],
    [["--latency-ms", "-5"], /--latency-ms/],
    [["--key", "sk-abc=sometimes"], /--key expects/],
    [["--key", "=valid"], /--key expects/],
    [["--bogus"], /bogus/],
  ])("refuses %j with exit code 2", async (argv, message) => {
    const { io, err } = captureIo();
    expect(await runMockProviderCommand(argv, io)).toBe(2);
    expect(err.join("")).toMatch(message);
  });

  it("serves the configured keys, prints the base URLs and stops cleanly", async () => {
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    const { io, out } = captureIo(() => stopped);
    const key = `sk-proj-cli${"a".repeat(40)}`;
    const running = runMockProviderCommand(["--port", "0", "--key", `${key}=rate_limited`], io);
    while (!out.join("").includes("ANTHROPIC_BASE_URL")) await new Promise((resolve) => setTimeout(resolve, 5));
    const printed = out.join("");
    const openAiBaseUrl = /OPENAI_BASE_URL=(\S+)/.exec(printed)?.[1];
    expect(openAiBaseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(printed).toMatch(/ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:\d+\n/);

    const response = await fetch(`${openAiBaseUrl}/models`, { headers: { authorization: `Bearer ${key}` } });
    await response.arrayBuffer();
    expect(response.status).toBe(429);

    stop();
    expect(await running).toBe(0);
    await expect(fetch(`${openAiBaseUrl}/models`)).rejects.toThrow();
  });
});
