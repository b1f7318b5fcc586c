import type { Config } from "../config/config-schema.js";
import { ConfigError, loadConfig } from "../config/load-config.js";
import { readProcessEnv } from "../config/process-env.js";
import { type GeneratedSecret, withDevSecrets } from "./dev-secrets.js";

/** A command's configuration, and the development secrets generated for it but not written yet. */
export type RuntimeConfig = { config: Config; generated: GeneratedSecret[] };

/**
 * Config for a CLI command: the environment (the process's, or `options.env`) plus, outside
 * production, development secrets.
 */
export function loadRuntimeConfig(options: { quiet?: boolean; env?: Record<string, string | undefined> } = {}): RuntimeConfig | undefined {
  const { env, warnings, generated } = withDevSecrets(options.env ?? readProcessEnv());
  if (options.quiet !== true) for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
  try {
    return { config: loadConfig(env), generated };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return undefined;
    }
    throw error;
  }
}
