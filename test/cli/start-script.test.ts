import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };

describe("npm start", () => {
  // The benchmark launches Keyport with these same options (bench/keyport-setup.mjs).
  it("runs the launcher with V8 options this Node accepts", () => {
    const [node, ...rest] = packageJson.scripts.start.split(" ");
    const options = rest.slice(0, -2);
    expect(node).toBe("node");
    expect(rest.slice(-2)).toEqual(["bin/keyport.js", "serve"]);
    expect(options).toEqual(expect.arrayContaining([expect.stringMatching(/^--max-semi-space-size=\d+$/), expect.stringMatching(/^--heap-growing-percent=\d+$/)]));
    // An option Node does not know makes it exit with "bad option" before running anything.
    expect(execFileSync(process.execPath, [...options, "-e", "process.stdout.write('ok')"], { encoding: "utf8" })).toBe("ok");
  });
});
