import { existsSync } from "node:fs";
import path from "node:path";
import { it as base, describe, expect } from "vitest";
import { COMMANDS } from "../../src/cli/command-help.js";
import { cleanEnv, type CliRunner, createCliRunner, createTempDirs } from "./cli-process.js";

type Fixtures = { cli: CliRunner; makeDir: () => string };

const it = base.extend<Fixtures>({
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

// A configuration no command could start with: help must not need one.
const BROKEN_CONFIG = { NODE_ENV: "production", PORT: "not-a-port", DATABASE_URL: "mysql://nowhere" };

describe("keyport <command> --help", () => {
  it.for(COMMANDS.map((command) => command.name))(
    "%s --help, -h and `help %s` print the usage, the options and the environment, exit 0 and touch nothing",
    async (name, { cli, makeDir }) => {
      const cwd = makeDir();
      const env = cleanEnv(BROKEN_CONFIG);
      const results = await Promise.all([[name, "--help"], [name, "-h"], ["help", name]].map((args) => cli.run(args, { env, cwd })));
      const [first] = results;
      for (const result of results) {
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).toBe("");
        expect(result.stdout).toBe(first?.stdout);
      }
      const help = first?.stdout ?? "";
      expect(help.startsWith(`usage: keyport ${name}`)).toBe(true);
      expect(help).toMatch(/\nOptions:\n/);
      expect(help).toContain("--help, -h");
      expect(help).toMatch(/\nEnvironment:( none\.)?\n/);
      expect(existsSync(path.join(cwd, "data"))).toBe(false);
    },
  );

  it("names each command's options and the variables it reads", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const help = async (name: string) => (await cli.run([name, "--help"], { env: cleanEnv(), cwd })).stdout;
    const [token, portalLink, mockProvider, serve, rotate, generate] = await Promise.all(
      ["token", "portal-link", "mock-provider", "serve", "rotate-encryption-key", "gen-encryption-key"].map(help),
    );
    for (const option of ["--sub", "--tier", "--owner", "--ttl"]) expect(token).toContain(option);
    expect(token).toContain("KEYPORT_JWT_SECRET");
    for (const option of ["--sub", "--owner", "--tier", "--return-url"]) expect(portalLink).toContain(option);
    expect(portalLink).toContain("KEYPORT_PUBLIC_URL");
    for (const option of ["--host", "--port", "--latency-ms", "--accept-unknown-keys", "--key"]) expect(mockProvider).toContain(option);
    expect(mockProvider).toMatch(/Environment: none\./);
    expect(serve).toContain("--demo");
    expect(serve).toContain("DATABASE_URL");
    expect(rotate).toContain("ENCRYPTION_KEY_PREVIOUS");
    expect(generate).toMatch(/Environment: none\./);
  });

  it.for(COMMANDS.map((command) => command.name))(
    "%s with an unknown option says which, prints the usage and exits 2 without doing anything",
    async (name, { cli, makeDir }) => {
      const cwd = makeDir();
      // A valid development environment: without the unknown option, serve and portal-link would run.
      const result = await cli.run([name, "--bogus"], { env: cleanEnv({ PORT: "0" }), cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/Unknown option '--bogus'/);
      expect(result.stderr).toContain(`usage: keyport ${name}`);
      expect(result.stderr).toContain(`keyport ${name} --help`);
      expect(result.stdout).toBe("");
      expect(existsSync(path.join(cwd, "data"))).toBe(false);
    },
  );

  it.for(["migrate", "gen-encryption-key", "rotate-encryption-key"])(
    "%s takes no arguments: one exits 2 with a message",
    async (name, { cli, makeDir }) => {
      const result = await cli.run([name, "extra"], { env: cleanEnv(), cwd: makeDir() });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/Unexpected argument 'extra'/);
      expect(result.stdout).toBe("");
    },
  );

  it("`keyport help` lists exactly the commands that have help; help for an unknown command exits 2", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const [list, unknown] = await Promise.all([["help"], ["help", "frobnicate"]].map((args) => cli.run(args, { env: cleanEnv(), cwd })));
    expect(list?.code).toBe(0);
    const listed = [...(list?.stdout ?? "").matchAll(/^ {2}(\S+) {2,}/gm)].map((match) => match[1]);
    expect(listed).toEqual(COMMANDS.map((command) => command.name));
    expect(unknown?.code).toBe(2);
    expect(unknown?.stderr).toMatch(/unknown command: frobnicate/);
    expect(unknown?.stdout).toBe("");
  });
});
