import { generateMasterKeyHex } from "../../crypto/master-keys.js";

export function runGenEncryptionKeyCommand(): number {
  process.stdout.write(`${generateMasterKeyHex()}\n`);
  return 0;
}
