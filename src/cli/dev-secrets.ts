import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/** A development secret generated for this start and not yet written to its file. */
export type GeneratedSecret = {
  variable: "ENCRYPTION_KEY" | "KEYPORT_JWT_SECRET" | "KEYPORT_ADMIN_TOKEN";
  /** Absolute path of the file it belongs in. */
  file: string;
  value: string;
};

export type DevSecretsResult = {
  env: Record<string, string | undefined>;
  /** Notices to print: each development secret read from its file. */
  warnings: string[];
  /**
   * Secrets generated because their file is missing. Nothing is written here: a command writes
   * them (`writeDevSecrets`) once it knows it may, so a start that is refused leaves the data
   * directory as it found it. A new ENCRYPTION_KEY in particular must never be written next to a
   * database that holds data encrypted with the old one.
   */
  generated: GeneratedSecret[];
};

/** The development operator token's file under the data directory. */
export const ADMIN_TOKEN_FILE = "admin-token";

const PRODUCTION_REMINDER =
  "Development secrets are for trying Keyport out. Production (NODE_ENV=production) must set ENCRYPTION_KEY and a JWT verifier itself.";

/**
 * Outside production, fills in ENCRYPTION_KEY, KEYPORT_JWT_SECRET and KEYPORT_ADMIN_TOKEN (so
 * portal links can be tried) from files under the data directory, or generates them when the
 * files are missing, so `npm start` needs no setup. A key
 * file next to the database it protects is fine for trying Keyport out and wrong for production,
 * which never reads these files.
 */
export function withDevSecrets(env: Record<string, string | undefined>): DevSecretsResult {
  if (env.NODE_ENV === "production") return { env, warnings: [], generated: [] };
  const dataDir = path.resolve(env.KEYPORT_DATA_DIR ?? "data");
  const warnings: string[] = [];
  const generated: GeneratedSecret[] = [];
  const next = { ...env };
  const hasVerifier = [env.KEYPORT_JWT_SECRET, env.KEYPORT_JWT_PUBLIC_KEY, env.KEYPORT_JWT_JWKS_URL].some(
    (value) => value !== undefined && value.trim() !== "",
  );

  const readOrGenerate = (variable: GeneratedSecret["variable"], name: string, generate: () => string): string => {
    const file = path.join(dataDir, name);
    if (existsSync(file)) {
      warnings.push(`Using the development secret in ${file}.`);
      return readFileSync(file, "utf8").trim();
    }
    const value = generate();
    generated.push({ variable, file, value });
    return value;
  };

  if (env.ENCRYPTION_KEY === undefined || env.ENCRYPTION_KEY.trim() === "") {
    next.ENCRYPTION_KEY = readOrGenerate("ENCRYPTION_KEY", "encryption.key", () => randomBytes(32).toString("hex"));
  }
  if (!hasVerifier) {
    next.KEYPORT_JWT_SECRET = readOrGenerate("KEYPORT_JWT_SECRET", "jwt-secret", () => randomBytes(48).toString("base64url"));
  }
  if (env.KEYPORT_ADMIN_TOKEN === undefined || env.KEYPORT_ADMIN_TOKEN.trim() === "") {
    next.KEYPORT_ADMIN_TOKEN = readOrGenerate("KEYPORT_ADMIN_TOKEN", ADMIN_TOKEN_FILE, () => randomBytes(32).toString("base64url"));
  }
  if (warnings.length > 0 || generated.length > 0) warnings.push(PRODUCTION_REMINDER);
  return { env: next, warnings, generated };
}

/**
 * Writes generated development secrets to their files (mode 0600, never over an existing file)
 * and returns the notices to print.
 */
export function writeDevSecrets(secrets: readonly GeneratedSecret[]): string[] {
  const notices: string[] = [];
  for (const { file, value } of secrets) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${value}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(file, 0o600);
    notices.push(`Generated a development secret in ${file} (mode 0600).`);
  }
  return notices;
}
