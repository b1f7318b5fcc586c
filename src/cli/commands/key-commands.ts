import { openStore } from "../../app.js";
import { createEnvelope } from "../../crypto/envelope.js";
import { createMasterKeyring } from "../../crypto/master-keys.js";
import { systemClock } from "../../lib/clock.js";
import { checkMasterKeys, MasterKeyMismatchError } from "../../vault/master-key-check.js";
import { rotateMasterKey } from "../../vault/rotate-master-key.js";
import { commitDevSecrets } from "../commit-dev-secrets.js";
import { loadRuntimeConfig } from "../load-runtime-config.js";

export async function runMigrateCommand(): Promise<number> {
  // Migrating needs no key: development secrets generated for it are not written.
  const config = loadRuntimeConfig()?.config;
  if (config === undefined) return 1;
  const store = await openStore(config);
  await store.close();
  process.stdout.write(`Database migrated (${config.database.kind}).\n`);
  return 0;
}

/**
 * Rewraps every owner's data key with the current ENCRYPTION_KEY while Keyport keeps serving.
 * Run it with the same environment as the servers after they were restarted with the new key in
 * ENCRYPTION_KEY and the old one in ENCRYPTION_KEY_PREVIOUS.
 */
export async function runRotateEncryptionKeyCommand(): Promise<number> {
  const runtime = loadRuntimeConfig();
  if (runtime === undefined) return 1;
  const { config } = runtime;
  const keyring = createMasterKeyring({
    current: config.encryption.current.reveal(),
    previous: config.encryption.previous.map((key) => key.reveal()),
  });
  try {
    await commitDevSecrets(runtime);
  } catch (error) {
    if (!(error instanceof MasterKeyMismatchError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  const store = await openStore(config);
  try {
    await checkMasterKeys({ masterKeys: store.masterKeys, dataKeys: store.dataKeys, clock: systemClock }, keyring);
    const report = await rotateMasterKey(
      { dataKeys: store.dataKeys, envelope: createEnvelope(keyring), clock: systemClock },
      keyring.current.kid,
      { onProgress: (count) => process.stderr.write(`rewrapped ${count} data keys\n`) },
    );
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const leftOnOldKeys = Object.entries(report.countsByKid).filter(([kid, count]) => kid !== report.currentKid && count > 0);
    if (leftOnOldKeys.length > 0 || report.failed > 0) {
      process.stderr.write("Some data keys are still on an old master key; run the command again.\n");
      return 1;
    }
    process.stdout.write("Every data key is on the current master key; ENCRYPTION_KEY_PREVIOUS can be removed.\n");
    return 0;
  } catch (error) {
    if (error instanceof MasterKeyMismatchError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await store.close();
  }
}

