import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { decodeJwt, jwtVerify } from "jose";
import { it as base, describe, expect } from "vitest";
import { createMasterKeyring } from "../../src/crypto/master-keys.js";
import { startMockProvider } from "../../src/mock-provider/mock-provider.js";
import { anthropicKey, openAiKey } from "../support/keys.js";
import {
  type CliRunner,
  cleanEnv,
  createCliRunner,
  createTempDirs,
  freePort,
  isListening,
  requestJson,
  type RunningServer,
  startServe,
  stopServe,
} from "./cli-process.js";

const execFileAsync = promisify(execFile);

type Fixtures = {
  /** Spawns keyport processes; every one still running is killed after the test. */
  cli: CliRunner;
  /** Makes temporary directories, removed after the test. */
  makeDir: () => string;
  /** Registers clean-up to run after the test (after the processes are gone). */
  onTeardown: (teardown: () => Promise<void>) => void;
};

// Fixtures rather than shared `afterEach` state: concurrent tests each clean up only their own
// processes. (`{}`: vitest reads a fixture's dependencies from its destructuring.)
const it = base.extend<Fixtures>({
  onTeardown: async ({ cli }, use) => {
    const teardowns: Array<() => Promise<void>> = [];
    await use((teardown) => teardowns.push(teardown));
    await cli.killAll();
    for (const teardown of teardowns.reverse()) await teardown();
  },
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

/** `keyport serve`, stopped with SIGTERM; a clean stop exits 0. */
async function stopServer(server: RunningServer): Promise<void> {
  const result = await stopServe(server);
  expect(result.code, result.stderr).toBe(0);
}

function kidOf(masterKeyHex: string): string {
  return createMasterKeyring({ current: masterKeyHex, previous: [] }).current.kid;
}

function jwtSecret(): string {
  return randomBytes(48).toString("base64url");
}

async function newToken(cli: CliRunner, env: Record<string, string>, cwd: string, sub: string): Promise<string> {
  const result = await cli.run(["token", "--sub", sub, "--tier", "premium"], { env, cwd });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** The master-key id in the header of a stored blob: version | kidLength | kid | … */
function blobKid(wrapped: string): string {
  const bytes = Buffer.from(wrapped, "base64url");
  return bytes.subarray(2, 2 + (bytes[1] ?? 0)).toString("ascii");
}

const NO_STACK_TRACE = /^\s+at /m;

describe("keyport serve on a fresh clone", () => {
  it("generates development secrets, prints a working Settings link and commands, and reuses the secrets on the next start", async ({ cli, makeDir, onTeardown }) => {
    const mock = await startMockProvider({ acceptUnknownKeys: false });
    onTeardown(() => mock.close());
    const cwd = makeDir();
    const env = cleanEnv({ PORT: "0", OPENAI_BASE_URL: mock.openaiBaseUrl });
    const first = await startServe(cli, env, cwd);
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    for (const file of ["encryption.key", "jwt-secret", "admin-token"]) {
      expect(statSync(path.join(cwd, "data", file)).mode & 0o777).toBe(0o600);
    }
    const encryptionKey = readFileSync(path.join(cwd, "data", "encryption.key"), "utf8").trim();
    const secret = readFileSync(path.join(cwd, "data", "jwt-secret"), "utf8").trim();
    expect(encryptionKey).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.byteLength(secret)).toBeGreaterThanOrEqual(32);
    expect(first.process.stderr()).toMatch(/Generated a development secret in .*encryption\.key/);
    expect(first.process.stderr()).toMatch(/Production \(NODE_ENV=production\) must set ENCRYPTION_KEY and a JWT verifier/);
    // Without --demo nothing printed carries a made-up provider key.
    expect(first.banner).not.toMatch(/sk-[A-Za-z0-9]/);

    const curlLines = first.banner.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("curl "));
    expect(curlLines).toHaveLength(3);
    const [storeLine = "", listLine = "", linkLine = ""] = curlLines;
    const withStatus = (line: string) => `${line} -w '\\n%{http_code}'`;
    const run = async (line: string, extraEnv: Record<string, string> = {}) => {
      const result = await execFileAsync("sh", ["-c", withStatus(line)], { env: cleanEnv(extraEnv), timeout: 25_000 });
      const [body = "", status] = result.stdout.split(/\n(?=\d{3}$)/);
      return { status, body: JSON.parse(body) as Record<string, unknown> };
    };

    // Storing a key takes the user's own: without OPENAI_API_KEY the command stops before sending anything.
    const unset = await execFileAsync("sh", ["-c", storeLine], { env: cleanEnv(), timeout: 10_000 }).then(
      () => undefined,
      (error: { stderr?: string }) => error,
    );
    expect(unset?.stderr).toMatch(/set OPENAI_API_KEY to your OpenAI key/);
    expect(mock.requests()).toEqual([]);
    const ownKey = openAiKey();
    mock.setKey(ownKey, "valid");
    const stored = await run(storeLine, { OPENAI_API_KEY: ownKey });
    expect(stored.status).toBe("201");
    expect(stored.body).toMatchObject({ status: "valid", label: "Mine", keyHint: `****...${ownKey.slice(-4)}` });

    const listed = await run(listLine);
    expect(listed.status).toBe("200");
    expect((listed.body.keys as Array<{ id: string }>).map((key) => key.id)).toEqual([stored.body.id]);

    // The printed Settings link opens the demo user's page, once.
    const link = /Settings page of user:demo .*\n\s+(http:\/\/\S+)/.exec(first.banner)?.[1] ?? "";
    const opened = await fetch(link, { redirect: "manual" });
    expect(opened.status).toBe(303);
    const cookie = opened.headers.get("set-cookie")?.split(";")[0] ?? "";
    const page = await fetch(`${first.url}/portal/`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<script type="module" crossorigin src="\/portal\/assets\/index-[\w-]+\.js">/);
    const sessionKeys = await fetch(`${first.url}/api/v1/api-keys`, { headers: { cookie } });
    expect(((await sessionKeys.json()) as { keys: Array<{ id: string }> }).keys.map((key) => key.id)).toEqual([stored.body.id]);
    // As the operator's backend would: a new link with the development admin token.
    const operatorLink = await run(linkLine);
    expect(operatorLink.status).toBe("201");
    expect(operatorLink.body.url).toMatch(new RegExp(`^${first.url}/portal/open/`));

    const firstToken = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(listLine)?.[1] ?? "";
    await stopServer(first);

    const second = await startServe(cli, env, cwd);
    expect(second.process.stderr()).toMatch(/Using the development secret in .*encryption\.key/);
    expect(second.process.stderr()).not.toMatch(/Generated/);
    expect(readFileSync(path.join(cwd, "data", "encryption.key"), "utf8").trim()).toBe(encryptionKey);
    // The first start's token still verifies: the JWT secret was reused, not regenerated.
    const fetched = await requestJson("GET", `${second.url}/api/v1/api-keys/${String(stored.body.id)}`, { token: firstToken });
    expect(fetched.status).toBe(200);
    expect(fetched.body).toMatchObject({ id: stored.body.id, keyHint: stored.body.keyHint });
    // Testing decrypts the stored key: the same master key was reused.
    const tested = await requestJson("POST", `${second.url}/api/v1/api-keys/${String(stored.body.id)}/test`, { token: firstToken });
    expect(tested.status, JSON.stringify(tested.body)).toBe(200);
    expect(tested.body.key.status).toBe("valid");
    // `keyport token` in the same directory signs with the same development secret.
    const otherToken = await newToken(cli, env, cwd, "someone-else");
    expect(await requestJson("GET", `${second.url}/api/v1/api-keys`, { token: otherToken })).toMatchObject({ status: 200, body: { keys: [] } });
    await stopServer(second);
  }, 90_000);
});

describe("a development start whose encryption.key was deleted", () => {
  it("refuses while the database holds keys, names the missing file and writes nothing; the old file put back works", async ({ cli, makeDir, onTeardown }) => {
    const mock = await startMockProvider({ acceptUnknownKeys: false });
    onTeardown(() => mock.close());
    const cwd = makeDir();
    const dataDir = path.join(cwd, "data");
    const keyFile = path.join(dataDir, "encryption.key");
    const env = cleanEnv({ PORT: "0", OPENAI_BASE_URL: mock.openaiBaseUrl });
    const providerKey = openAiKey();
    mock.setKey(providerKey, "valid");

    const first = await startServe(cli, env, cwd);
    const token = await newToken(cli, env, cwd, "keeper");
    const created = await requestJson("POST", `${first.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey: providerKey } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await stopServer(first);

    const originalKey = readFileSync(keyFile, "utf8");
    rmSync(keyFile);
    // Every file below the data directory (the usage journal keeps a folder there).
    const snapshot = () =>
      readdirSync(dataDir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort()
        .map((file) => [file, readFileSync(file).toString("base64")]);
    const before = snapshot();

    const refused = await cli.run(["serve"], { env, cwd });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`Keyport cannot start: the development encryption key ${keyFile} is missing`);
    expect(refused.stderr).toContain(kidOf(originalKey.trim()));
    expect(refused.stderr).toMatch(/holds 1 data keys/);
    expect(refused.stderr).toMatch(/Put the original key back in .*encryption\.key \(or set ENCRYPTION_KEY to it\)/);
    expect(refused.stderr).not.toMatch(/Generated a development secret/);
    expect(refused.stderr).not.toMatch(NO_STACK_TRACE);
    expect(refused.stdout).not.toMatch(/Keyport is running/);
    expect(existsSync(keyFile)).toBe(false);
    expect(snapshot()).toEqual(before);

    // Rotation on the same directory is refused the same way.
    const rotation = await cli.run(["rotate-encryption-key"], { env, cwd });
    expect(rotation.code).toBe(1);
    expect(rotation.stderr).toContain(`${keyFile} is missing`);
    expect(existsSync(keyFile)).toBe(false);

    writeFileSync(keyFile, originalKey, { mode: 0o600 });
    const restored = await startServe(cli, env, cwd);
    const tested = await requestJson("POST", `${restored.url}/api/v1/api-keys/${created.body.id}/test`, { token: await newToken(cli, env, cwd, "keeper") });
    expect(tested.status, JSON.stringify(tested.body)).toBe(200);
    expect(tested.body.result).toBe("valid");
    await stopServer(restored);
    expect(cli.allOutput()).not.toContain(originalKey.trim());
  }, 120_000);
});

describe.concurrent("start-up refusals", { timeout: 60_000 }, () => {
  const key = randomBytes(32).toString("hex");
  const secret = jwtSecret();

  async function expectRefusal(cli: CliRunner, cwd: string, extraEnv: Record<string, string>, message: RegExp) {
    const port = await freePort();
    const result = await cli.run(["serve"], { env: cleanEnv({ PORT: String(port), ...extraEnv }), cwd });
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(NO_STACK_TRACE);
    expect(result.stdout).not.toMatch(/listening|Keyport is running/);
    expect(await isListening(port)).toBe(false);
    return { result, cwd };
  }

  it("production without ENCRYPTION_KEY names the variable and the command that makes one", async ({ cli, makeDir }) => {
    const { cwd } = await expectRefusal(
      cli,
      makeDir(),
      { NODE_ENV: "production", KEYPORT_JWT_SECRET: secret },
      /ENCRYPTION_KEY is required in production.*keyport gen-encryption-key/,
    );
    expect(existsSync(path.join(cwd, "data"))).toBe(false);
  });

  it("refuses an ENCRYPTION_KEY of 63 hex characters without echoing it", async ({ cli, makeDir }) => {
    const short = key.slice(0, 63);
    const { result } = await expectRefusal(
      cli,
      makeDir(),
      { NODE_ENV: "production", ENCRYPTION_KEY: short, KEYPORT_JWT_SECRET: secret },
      /ENCRYPTION_KEY must be exactly 64 hex characters.*keyport gen-encryption-key/,
    );
    expect(`${result.stdout}${result.stderr}`).not.toContain(short);
  });

  it.for([
    ["an all-zero ENCRYPTION_KEY in production", { NODE_ENV: "production", ENCRYPTION_KEY: "0".repeat(64) }, /ENCRYPTION_KEY is not a random key/],
    ["a base64 ENCRYPTION_KEY, with how to convert it", { ENCRYPTION_KEY: randomBytes(32).toString("base64") }, /64 hex characters.*base64.*node -e/],
  ] as const)("refuses %s without echoing it", async ([, extraEnv, message], { cli, makeDir }) => {
    const cwd = makeDir();
    const { result } = await expectRefusal(cli, cwd, { KEYPORT_JWT_SECRET: secret, ...extraEnv }, message);
    expect(`${result.stdout}${result.stderr}`).not.toContain(extraEnv.ENCRYPTION_KEY);
    expect(existsSync(path.join(cwd, "data"))).toBe(false);
  });

  it("production without a JWT verifier lists the three ways to configure one", async ({ cli, makeDir }) => {
    await expectRefusal(
      cli,
      makeDir(),
      { NODE_ENV: "production", ENCRYPTION_KEY: key },
      /JWT verifier is required: set KEYPORT_JWT_SECRET.*KEYPORT_JWT_PUBLIC_KEY.*KEYPORT_JWT_JWKS_URL/,
    );
  });

  it.for([
    ["in production", { NODE_ENV: "production", ENCRYPTION_KEY: key }],
    ["in development", {}],
  ] as const)("refuses a KEYPORT_JWT_SECRET of 31 bytes %s", async ([, extraEnv], { cli, makeDir }) => {
    const short = "s".repeat(31);
    const { result } = await expectRefusal(
      cli,
      makeDir(),
      { ...extraEnv, KEYPORT_JWT_SECRET: short },
      /KEYPORT_JWT_SECRET is too short: it must be at least 32 bytes/,
    );
    expect(`${result.stdout}${result.stderr}`).not.toContain(short);
  });

  it("production never reads the development secrets in ./data", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    mkdirSync(path.join(cwd, "data"));
    writeFileSync(path.join(cwd, "data", "encryption.key"), `${key}\n`, { mode: 0o600 });
    writeFileSync(path.join(cwd, "data", "jwt-secret"), `${secret}\n`, { mode: 0o600 });
    const noKey = await expectRefusal(cli, cwd, { NODE_ENV: "production", KEYPORT_JWT_SECRET: secret }, /ENCRYPTION_KEY is required in production/);
    expect(noKey.result.stderr).not.toMatch(/development secret/);
    await expectRefusal(cli, cwd, { NODE_ENV: "production", ENCRYPTION_KEY: key }, /JWT verifier is required/);
  });

  it("refuses a port that is taken with a message, not a stack trace", async ({ cli, makeDir, onTeardown }) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    onTeardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const address = taken.address();
    const port = String(typeof address === "object" && address !== null ? address.port : 0);
    const result = await cli.run(["serve"], { env: cleanEnv({ PORT: port }), cwd: makeDir() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`${port}.*(in use|taken)|(in use|taken).*${port}`));
    expect(result.stderr).not.toMatch(NO_STACK_TRACE);
  });
});

describe("master keys", { timeout: 60_000 }, () => {
  async function withMock(onTeardown: Fixtures["onTeardown"]) {
    const mock = await startMockProvider({ acceptUnknownKeys: false });
    onTeardown(() => mock.close());
    return mock;
  }

  it("refuses to start with a different ENCRYPTION_KEY, naming fingerprints and never the key", async ({ cli, makeDir, onTeardown }) => {
    const mock = await withMock(onTeardown);
    const cwd = makeDir();
    const keyA = randomBytes(32).toString("hex");
    const keyB = randomBytes(32).toString("hex");
    const base = {
      PORT: "0",
      KEYPORT_DATA_DIR: path.join(cwd, "data"),
      DATABASE_URL: `sqlite:${path.join(cwd, "k.db")}`,
      KEYPORT_JWT_SECRET: jwtSecret(),
      OPENAI_BASE_URL: mock.openaiBaseUrl,
    };
    const envA = cleanEnv({ ...base, ENCRYPTION_KEY: keyA });
    const providerKey = openAiKey();
    mock.setKey(providerKey, "valid");
    const server = await startServe(cli, envA, cwd);
    const token = await newToken(cli, envA, cwd, "u1");
    const created = await requestJson("POST", `${server.url}/api/v1/api-keys`, { token, body: { provider: "openai", apiKey: providerKey } });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe("valid");
    await stopServer(server);

    const result = await cli.run(["serve"], { env: cleanEnv({ ...base, ENCRYPTION_KEY: keyB }), cwd });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`fingerprint ${kidOf(keyB)}`);
    expect(result.stderr).toContain(`recorded: ${kidOf(keyA)}`);
    expect(result.stderr).toMatch(/Set ENCRYPTION_KEY to the original key/);
    expect(result.stderr).toMatch(/ENCRYPTION_KEY_PREVIOUS/);
    expect(result.stderr).not.toMatch(NO_STACK_TRACE);
    expect(result.stdout).not.toMatch(/Keyport is running/);
    const everything = cli.allOutput().toLowerCase();
    for (const secret of [keyA, keyB, providerKey.toLowerCase()]) expect(everything).not.toContain(secret);
  });

  it("rotates online: rewrap while serving, then drop the previous key", async ({ cli, makeDir, onTeardown }) => {
    const mock = await withMock(onTeardown);
    const cwd = makeDir();
    const keyA = randomBytes(32).toString("hex");
    const keyB = randomBytes(32).toString("hex");
    const [kidA, kidB] = [kidOf(keyA), kidOf(keyB)];
    const databasePath = path.join(cwd, "k.db");
    const base = {
      PORT: "0",
      KEYPORT_DATA_DIR: path.join(cwd, "data"),
      DATABASE_URL: `sqlite:${databasePath}`,
      KEYPORT_JWT_SECRET: jwtSecret(),
      OPENAI_BASE_URL: mock.openaiBaseUrl,
      ANTHROPIC_BASE_URL: mock.anthropicBaseUrl,
    };
    const envA = cleanEnv({ ...base, ENCRYPTION_KEY: keyA });
    const envRotating = cleanEnv({ ...base, ENCRYPTION_KEY: keyB, ENCRYPTION_KEY_PREVIOUS: keyA });
    const envB = cleanEnv({ ...base, ENCRYPTION_KEY: keyB });
    const providerKeys = { openai: openAiKey(), anthropic: anthropicKey() };
    mock.setKey(providerKeys.openai, "valid");
    mock.setKey(providerKeys.anthropic, "valid");

    const serverA = await startServe(cli, envA, cwd);
    const owners = [
      { token: await newToken(cli, envA, cwd, "owner-one"), provider: "openai" as const, id: "" },
      { token: await newToken(cli, envA, cwd, "owner-two"), provider: "anthropic" as const, id: "" },
    ];
    for (const owner of owners) {
      const created = await requestJson("POST", `${serverA.url}/api/v1/api-keys`, {
        token: owner.token,
        body: { provider: owner.provider, apiKey: providerKeys[owner.provider] },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      owner.id = created.body.id;
    }
    await stopServer(serverA);

    const readDatabase = () => {
      const database = new Database(databasePath, { fileMustExist: true });
      try {
        return {
          dataKeys: database.prepare("select owner, kid, wrapped from data_keys order by owner").all() as Array<{ owner: string; kid: string; wrapped: string }>,
          ciphertexts: database.prepare("select id, ciphertext from provider_keys order by id").all(),
        };
      } finally {
        database.close();
      }
    };
    const before = readDatabase();
    expect(before.dataKeys.map((row) => [row.kid, blobKid(row.wrapped)])).toEqual([[kidA, kidA], [kidA, kidA]]);

    const expectBothKeysTestValid = async (url: string) => {
      for (const owner of owners) {
        const tested = await requestJson("POST", `${url}/api/v1/api-keys/${owner.id}/test`, { token: owner.token });
        expect(tested.status, JSON.stringify(tested.body)).toBe(200);
        expect(tested.body.result).toBe("valid");
        expect(tested.body.key.status).toBe("valid");
      }
    };

    const rotating = await startServe(cli, envRotating, cwd);
    await expectBothKeysTestValid(rotating.url);

    // With only the new key, the data keys still on the old one would be unreadable: refused.
    const tooEarly = await cli.run(["serve"], { env: envB, cwd });
    expect(tooEarly.code).toBe(1);
    expect(tooEarly.stderr).toContain(`${kidA} (2 data keys)`);
    expect(tooEarly.stderr).toMatch(/ENCRYPTION_KEY_PREVIOUS/);

    const rotation = await cli.run(["rotate-encryption-key"], { env: envRotating, cwd });
    expect(rotation.code, rotation.stderr).toBe(0);
    const report = JSON.parse(rotation.stdout.slice(0, rotation.stdout.lastIndexOf("}") + 1)) as Record<string, unknown>;
    expect(report).toEqual({ currentKid: kidB, rewrapped: 2, failed: 0, countsByKid: { [kidB]: 2 } });
    expect(rotation.stdout).toMatch(/ENCRYPTION_KEY_PREVIOUS can be removed/);
    // The server that was running during the rotation opens the rewrapped data keys.
    await expectBothKeysTestValid(rotating.url);

    const rerun = await cli.run(["rotate-encryption-key"], { env: envRotating, cwd });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout.slice(0, rerun.stdout.lastIndexOf("}") + 1))).toMatchObject({ rewrapped: 0, failed: 0 });
    await stopServer(rotating);

    const serverB = await startServe(cli, envB, cwd);
    await expectBothKeysTestValid(serverB.url);
    await stopServer(serverB);

    const after = readDatabase();
    expect(after.dataKeys).toHaveLength(2);
    for (const row of after.dataKeys) {
      expect(row.kid).toBe(kidB);
      expect(blobKid(row.wrapped)).toBe(kidB);
    }
    // Provider-key ciphertexts are sealed with the data keys and do not change.
    expect(after.ciphertexts).toEqual(before.ciphertexts);

    // Going back to the old key alone is refused: the data keys are on the new one now.
    const rollback = await cli.run(["serve"], { env: envA, cwd });
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toContain(`${kidB} (2 data keys)`);

    const everything = cli.allOutput().toLowerCase();
    for (const secret of [keyA, keyB, providerKeys.openai.toLowerCase(), providerKeys.anthropic.toLowerCase()]) {
      expect(everything).not.toContain(secret);
    }
  }, 120_000);

  it("rotate-encryption-key with an unrelated key exits 1 and names the recorded fingerprint", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const base = { KEYPORT_DATA_DIR: path.join(cwd, "data"), KEYPORT_JWT_SECRET: jwtSecret() };
    const keyA = randomBytes(32).toString("hex");
    // The first run on an empty database records keyA's verifier.
    const first = await cli.run(["rotate-encryption-key"], { env: cleanEnv({ ...base, ENCRYPTION_KEY: keyA }), cwd });
    expect(first.code, first.stderr).toBe(0);
    const keyB = randomBytes(32).toString("hex");
    const wrong = await cli.run(["rotate-encryption-key"], { env: cleanEnv({ ...base, ENCRYPTION_KEY: keyB }), cwd });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`recorded: ${kidOf(keyA)}`);
    expect(wrong.stderr).not.toMatch(NO_STACK_TRACE);
    expect(`${wrong.stdout}${wrong.stderr}`).not.toContain(keyB);
  });
});

describe.concurrent("small commands", { timeout: 60_000 }, () => {
  it("gen-encryption-key prints a fresh 64-hex-character key each time", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const [first, second] = await Promise.all([
      cli.run(["gen-encryption-key"], { env: cleanEnv(), cwd }),
      cli.run(["gen-encryption-key"], { env: cleanEnv(), cwd }),
    ]);
    for (const result of [first, second]) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    }
    expect(first.stdout).not.toBe(second.stdout);
    expect(existsSync(path.join(cwd, "data"))).toBe(false);
  });

  it("token signs sub, tier and exp with KEYPORT_JWT_SECRET", async ({ cli, makeDir }) => {
    const secret = jwtSecret();
    const env = cleanEnv({ KEYPORT_JWT_SECRET: secret, ENCRYPTION_KEY: randomBytes(32).toString("hex") });
    const result = await cli.run(["token", "--sub", "u1", "--tier", "premium"], { env, cwd: makeDir() });
    expect(result.code, result.stderr).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(result.stdout.trim(), new TextEncoder().encode(secret), { algorithms: ["HS256"] });
    expect(protectedHeader.alg).toBe("HS256");
    expect(payload).toMatchObject({ sub: "u1", tier: "premium" });
    expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
    await expect(jwtVerify(result.stdout.trim(), new TextEncoder().encode(jwtSecret()), { algorithms: ["HS256"] })).rejects.toThrow();
  });

  it("token --ttl sets the lifetime and --owner the owner claim", async ({ cli, makeDir }) => {
    const env = cleanEnv({ KEYPORT_JWT_SECRET: jwtSecret(), ENCRYPTION_KEY: randomBytes(32).toString("hex") });
    const result = await cli.run(["token", "--sub", "u1", "--owner", "project:p1", "--ttl", "60"], { env, cwd: makeDir() });
    expect(result.code, result.stderr).toBe(0);
    const payload = decodeJwt(result.stdout.trim());
    expect(payload).toMatchObject({ sub: "u1", owner: "project:p1" });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(60);
  });

  it.for([
    ["without --sub", ["token"], /usage: keyport token --sub/],
    ["with a bad --ttl", ["token", "--sub", "u1", "--ttl", "soon"], /--ttl must be a positive number/],
    ["with a --ttl the server would refuse", ["token", "--sub", "u1", "--ttl", "86401"], /longer than the server accepts \(KEYPORT_JWT_MAX_TTL_SECONDS=86400\)/],
    ["with an unknown option", ["token", "--sub", "u1", "--bogus"], /bogus/],
    ["with a sub the verifier refuses", ["token", "--sub", "not a sub!"], /sub must match/],
    ["with an owner the verifier refuses", ["token", "--sub", "u1", "--owner", "team:x"], /owner must be/],
    ["with a tier that is not configured", ["token", "--sub", "u1", "--tier", "gold"], /tier/],
  ] as const)("token %s exits 2 with a message and prints no token", async ([, args, message], { cli, makeDir }) => {
    const env = cleanEnv({ KEYPORT_JWT_SECRET: jwtSecret(), ENCRYPTION_KEY: randomBytes(32).toString("hex") });
    const result = await cli.run(args, { env, cwd: makeDir() });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(NO_STACK_TRACE);
    expect(result.stdout).toBe("");
  });

  it("migrate creates the tables and exits 0", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const databasePath = path.join(cwd, "m.db");
    const env = cleanEnv({
      DATABASE_URL: `sqlite:${databasePath}`,
      ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      KEYPORT_JWT_SECRET: jwtSecret(),
    });
    const result = await cli.run(["migrate"], { env, cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Database migrated (sqlite)");
    const database = new Database(databasePath, { readonly: true, fileMustExist: true });
    try {
      const tables = (database.prepare("select name from sqlite_master where type = 'table'").all() as Array<{ name: string }>).map((row) => row.name);
      expect(tables).toEqual(expect.arrayContaining(["master_keys", "data_keys", "provider_keys", "audit_events", "idempotency_keys"]));
    } finally {
      database.close();
    }
  });

  it("an unknown command exits 2 with usage; help exits 0", async ({ cli, makeDir }) => {
    const cwd = makeDir();
    const [unknown, ...helps] = await Promise.all(
      [["frobnicate"], ["help"], ["--help"]].map((args) => cli.run(args, { env: cleanEnv(), cwd })),
    );
    expect(unknown?.code).toBe(2);
    expect(unknown?.stderr).toMatch(/unknown command: frobnicate/);
    expect(unknown?.stderr).toMatch(/usage: keyport <command>/);
    for (const help of helps) {
      expect(help.code).toBe(0);
      for (const command of ["serve", "migrate", "gen-encryption-key", "rotate-encryption-key", "token", "mock-provider", "portal-link"]) {
        expect(help.stdout).toContain(command);
      }
    }
    expect(existsSync(path.join(cwd, "data"))).toBe(false);
  });
});

describe("shutdown", { timeout: 60_000 }, () => {
  it.for(["SIGTERM", "SIGINT"] as const)("%s stops serve with exit code 0, also with an idle keep-alive connection", async (signal, { cli, makeDir }) => {
    const cwd = makeDir();
    const server = await startServe(cli, cleanEnv({ PORT: "0" }), cwd);
    // fetch keeps the connection open in its pool afterwards.
    expect((await requestJson("GET", `${server.url}/healthz`)).status).toBe(200);
    server.process.child.kill(signal);
    const result = await server.process.waitForExit(10_000);
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(await isListening(Number(new URL(server.url).port))).toBe(false);
  });
});
