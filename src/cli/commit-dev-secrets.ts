import { existsSync } from "node:fs";
import { openStore } from "../app.js";
import { describeStoredEncryption, MasterKeyMismatchError } from "../vault/master-key-check.js";
import { writeDevSecrets } from "./dev-secrets.js";
import type { RuntimeConfig } from "./load-runtime-config.js";

/**
 * Writes the development secrets generated for this start. A newly generated ENCRYPTION_KEY is
 * written only when the database holds nothing encrypted with another one: when
 * `data/encryption.key` was deleted (or the data directory moved) while the database kept its
 * keys, the start is refused with a `MasterKeyMismatchError` naming the missing file, and nothing
 * is written, so putting the old file back is all it takes.
 */
export async function commitDevSecrets({ config, generated }: RuntimeConfig, options: { quiet?: boolean } = {}): Promise<void> {
  const newKey = generated.find((secret) => secret.variable === "ENCRYPTION_KEY");
  if (newKey !== undefined) await refuseIfDatabaseNeedsAnotherKey(config, newKey.file);
  const notices = writeDevSecrets(generated);
  if (options.quiet !== true) for (const notice of notices) process.stderr.write(`warning: ${notice}\n`);
}

async function refuseIfDatabaseNeedsAnotherKey(config: RuntimeConfig["config"], keyFile: string): Promise<void> {
  // A SQLite file that does not exist yet holds nothing (the usual first start): no need to open it.
  if (config.database.kind === "sqlite" && !existsSync(config.database.path)) return;
  const store = await openStore(config);
  let stored;
  try {
    stored = await describeStoredEncryption({ masterKeys: store.masterKeys, dataKeys: store.dataKeys });
  } finally {
    await store.close();
  }
  if (stored.kids.length === 0 && stored.dataKeyCount === 0) return;
  const database = config.database.kind === "sqlite" ? config.database.path : "(PostgreSQL, DATABASE_URL)";
  throw new MasterKeyMismatchError(
    `the development encryption key ${keyFile} is missing, but the database ${database} was set up with ` +
      `master key ${stored.kids.join(", ") || "(unrecorded)"} and holds ${stored.dataKeyCount} data keys encrypted with it. ` +
      `Put the original key back in ${keyFile} (or set ENCRYPTION_KEY to it) and start again. ` +
      "Nothing was written: a new key would leave every stored key unreadable.",
  );
}
