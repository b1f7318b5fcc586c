// Keyport as the benchmark runs it: a production configuration in a clean environment, an owner
// on a premium (BYOK, effectively unlimited) tier whose OpenAI and Anthropic keys the mock
// accepts, and the usage records it wrote, read back from its SQLite file.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { SignJWT } from "jose";

/** Tiers with one that never rate-limits: the benchmark measures the gateway, not the limiter. */
const BENCH_TIERS = {
  community: { requestsPerMinute: 10, requestsPerDay: 100, byokAllowed: false },
  premium: { requestsPerMinute: 10_000_000, requestsPerDay: 1_000_000_000, byokAllowed: true },
};

/**
 * The Node options Keyport runs with, read from `npm start` (`node <options> bin/keyport.js
 * serve`), so the benchmark measures Keyport as it is launched, V8 heap settings included.
 * @param {string} root the repository root
 * @returns {string[]}
 */
export function keyportNodeOptions(root) {
  const start = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts?.start;
  const match = typeof start === "string" ? /^node((?: --[\w-]+(?:=\S+)?)*) bin\/keyport\.js serve$/.exec(start) : null;
  if (match === null) throw new Error(`npm start is not "node [options] bin/keyport.js serve": ${String(start)}`);
  return match[1].split(" ").filter((option) => option !== "");
}

/** Fresh secrets for one benchmark run. */
export function newSecrets() {
  return {
    encryptionKey: randomBytes(32).toString("hex"),
    jwtSecret: randomBytes(48).toString("base64url"),
    openaiKey: `sk-proj-bench${randomBytes(24).toString("hex")}`,
    anthropicKey: `sk-ant-api03-bench${randomBytes(24).toString("hex")}`,
  };
}

/**
 * Keyport's whole environment (nothing is inherited from the shell that runs the benchmark).
 * @param {{ port: number, dataDir: string, dbPath: string, mockUrl: string, secrets: ReturnType<typeof newSecrets> }} options
 * @returns {Record<string, string>}
 */
export function keyportEnv({ port, dataDir, dbPath, mockUrl, secrets }) {
  return {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    KEYPORT_DATA_DIR: dataDir,
    DATABASE_URL: `sqlite:${dbPath}`,
    ENCRYPTION_KEY: secrets.encryptionKey,
    KEYPORT_JWT_SECRET: secrets.jwtSecret,
    OPENAI_BASE_URL: `${mockUrl}/v1`,
    ANTHROPIC_BASE_URL: mockUrl,
    KEYPORT_TIERS: JSON.stringify(BENCH_TIERS),
    LOG_LEVEL: "info",
  };
}

/**
 * An HS256 end-user token for the benchmark owner (`user:bench`, tier premium).
 * @param {string} jwtSecret
 */
export function signBenchToken(jwtSecret) {
  return new SignJWT({ tier: "premium" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("bench")
    .setIssuedAt()
    .setExpirationTime("6h")
    .sign(new TextEncoder().encode(jwtSecret));
}

/**
 * Stores and activates the owner's OpenAI and Anthropic keys through the management API (Keyport
 * validates each against the mock, which accepts unknown keys).
 * @param {string} origin
 * @param {string} token
 * @param {{ openaiKey: string, anthropicKey: string }} keys
 */
export async function createOwnerKeys(origin, token, keys) {
  for (const [provider, apiKey] of [
    ["openai", keys.openaiKey],
    ["anthropic", keys.anthropicKey],
  ]) {
    const response = await fetch(`${origin}/api/v1/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ provider, apiKey, label: `bench ${provider}`, activate: true }),
    });
    const body = await response.text();
    if (response.status !== 201) throw new Error(`creating the ${provider} key failed: HTTP ${response.status} ${body.slice(0, 300)}`);
    const status = /** @type {{ status?: unknown }} */ (JSON.parse(body)).status;
    if (status !== "valid") throw new Error(`the ${provider} key was stored as ${String(status)}, not valid`);
  }
}

/**
 * Gives the benchmark owner a monthly budget it never reaches (the budget variant): every gateway
 * call then reserves its worst case and settles it, which is what that variant measures.
 * @param {string} origin
 * @param {string} token
 */
export async function setOwnerBudget(origin, token) {
  const response = await fetch(`${origin}/api/v1/limits`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ monthlyBudgetUsd: 1_000_000 }),
  });
  if (response.status !== 200) throw new Error(`setting the budget failed: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
}

/**
 * Hook for a later scale check: fill the database before Keyport starts (many owners, keys and
 * usage records), and say what was added. The default benchmark starts from an empty database.
 * @param {{ dbPath: string, env: Record<string, string>, scale: boolean }} context
 * @returns {Promise<{ scale: boolean, owners: number, providerKeys: number, usageRecords: number }>}
 */
export async function prepareDatabase(context) {
  return { scale: context.scale, owners: 0, providerKeys: 0, usageRecords: 0 };
}

/**
 * Usage records Keyport wrote, read after it stopped (SIGTERM flushes the queue).
 * @param {string} dbPath
 */
export function readUsageRecords(dbPath) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = /** @type {{ total: number, ok2xx: number, non2xx: number, withoutTokens: number, statuses: string | null }} */ (
      db
        .prepare(
          `select count(*) as total,
                  sum(case when http_status between 200 and 299 then 1 else 0 end) as ok2xx,
                  sum(case when http_status between 200 and 299 then 0 else 1 end) as non2xx,
                  sum(case when http_status between 200 and 299 and (input_tokens is null or output_tokens is null) then 1 else 0 end) as withoutTokens,
                  (select group_concat(status || ':' || n) from (select status, count(*) as n from usage_records where request_id not like 'req_seed%' group by status)) as statuses
             from usage_records
            where request_id not like 'req_seed%'`,
        )
        .get()
    );
    return {
      total: row.total,
      status2xx: row.ok2xx ?? 0,
      non2xx: row.non2xx ?? 0,
      /** 2xx records whose token counts are missing: usage was not read from the response. */
      withoutTokens: row.withoutTokens ?? 0,
      byStatus: Object.fromEntries((row.statuses ?? "").split(",").filter(Boolean).map((pair) => {
        const [status, count] = pair.split(":");
        return [status, Number(count)];
      })),
    };
  } finally {
    db.close();
  }
}
