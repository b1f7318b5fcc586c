import type { Config } from "../config/config-schema.js";
import { ConfigError, loadConfig } from "../config/load-config.js";
import { readProcessEnv } from "../config/process-env.js";
import { withDevSecrets } from "./dev-secrets.js";

/** Config for a CLI command: the environment plus, outside production, development secrets. */
export function loadRuntimeConfig(options: { quiet?: boolean } = {}): Config | undefined {
  const { env, warnings } = withDevSecrets(readProcessEnv());
  if (options.quiet !== true) for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return undefined;
    }
    throw error;
  }
}
