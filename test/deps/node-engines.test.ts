import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * `engines` in package.json is a promise: every installed package must accept the first release
 * of each Node.js line it names (CI installs with --engine-strict, but only on the versions it
 * runs), the README says the same, and CI's Node.js is inside it.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

// semver comes with Fastify (a runtime dependency); it has no type declarations of its own.
const semver = createRequire(import.meta.url)("semver") as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
  major(version: string): number;
  intersects(range1: string, range2: string): boolean;
};

type LockEntry = { version?: string; engines?: { node?: string } | string[]; optional?: boolean; dev?: boolean };

const packageJson = JSON.parse(read("package.json")) as { engines: { node: string }; devDependencies: Record<string, string> };
const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, LockEntry> };
const engines = packageJson.engines.node;
/** The first release of each line `engines` names: 20.19.0, 22.13.0, 24.0.0. */
const lineStarts = engines.split("||").map((part) => semver.minVersion(part.trim())?.version ?? "none");

describe("Node.js engines", () => {
  it("names lines, each from a first supported release", () => {
    expect(lineStarts.length).toBeGreaterThan(1);
    for (const version of lineStarts) expect(semver.satisfies(version, engines), version).toBe(true);
  });

  it.for(lineStarts)("every installed package accepts Node.js %s", (version) => {
    const refusing = Object.entries(lock.packages)
      .filter(([name, entry]) => name !== "" && entry.optional !== true)
      .flatMap(([name, entry]) => {
        const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
        return range === undefined || semver.satisfies(version, range) ? [] : [`${name.replace(/^.*node_modules\//, "")}@${entry.version ?? "?"} (${range})`];
      });
    expect(refusing).toEqual([]);
  });

  it("the README states the same range, and CI runs the two LTS lines users run, both inside it", () => {
    expect(read("README.md")).toContain(`(\`engines\`: \`${engines}\`)`);
    const ciDefault = /KEYPORT_CI_NODE_VERSIONS-([\d ]+)\}/.exec(read(".ci/run"))?.[1]?.split(" ") ?? [];
    expect(ciDefault).toEqual(["22", "24"]);
    // CI installs the newest release of each line, which the range must admit.
    for (const major of ciDefault) expect(semver.intersects(`${major}.x`, engines), major).toBe(true);
  });

  it("types the code against the oldest line, so nothing newer is used by accident", () => {
    const typesMajor = semver.minVersion(packageJson.devDependencies["@types/node"] ?? "")?.version;
    expect(semver.major(typesMajor ?? "0.0.0")).toBe(semver.major(lineStarts[0] ?? ""));
  });
});
