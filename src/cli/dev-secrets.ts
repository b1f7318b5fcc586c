import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export type DevSecretsResult = {
  env: Record<string, string | undefined>;
  /** Warnings to print: each generated or reused development secret. */
  warnings: string[];
};

/**
 * Outside production, fills in ENCRYPTION_KEY and KEYPORT_JWT_SECRET from files under the data
 * directory, generating them (mode 0600) on first start, so `npm start` needs no setup. A key
 * file next to the database it protects is fine for trying Keyport out and wrong for production,
 * which never reads these files.
 */
export function withDevSecrets(env: Record<string, string | undefined>): DevSecretsResult {
  if (env.NODE_ENV === "production") return { env, warnings: [] };
  const dataDir = path.resolve(env.KEYPORT_DATA_DIR ?? "data");
  const warnings: string[] = [];
  const next = { ...env };
  const hasVerifier = [env.KEYPORT_JWT_SECRET, env.KEYPORT_JWT_PUBLIC_KEY, env.KEYPORT_JWT_JWKS_URL].some(
    (value) => value !== undefined && value.trim() !== "",
  );

  if (env.ENCRYPTION_KEY === undefined || env.ENCRYPTION_KEY.trim() === "") {
    next.ENCRYPTION_KEY = readOrCreate(dataDir, "encryption.key", () => randomBytes(32).toString("hex"), warnings);
  }
  if (!hasVerifier) {
    next.KEYPORT_JWT_SECRET = readOrCreate(dataDir, "jwt-secret", () => randomBytes(48).toString("base64url"), warnings);
  }
  if (warnings.length > 0) {
    warnings.push("Development secrets are for trying Keyport out. Production (NODE_ENV=production) must set ENCRYPTION_KEY and a JWT verifier itself.");
  }
  return { env: next, warnings };
}

function readOrCreate(dataDir: string, name: string, generate: () => string, warnings: string[]): string {
  const file = path.join(dataDir, name);
  if (existsSync(file)) {
    warnings.push(`Using the development secret in ${file}.`);
    return readFileSync(file, "utf8").trim();
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const value = generate();
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  warnings.push(`Generated a development secret in ${file} (mode 0600).`);
  return value;
}
