import { parseArgs } from "node:util";
import { signDevToken } from "../../auth/dev-token.js";
import { isAppError } from "../../lib/errors.js";
import { badUsage } from "../command-help.js";
import { writeDevSecrets } from "../dev-secrets.js";
import { loadRuntimeConfig } from "../load-runtime-config.js";


/** Prints a JWT signed with KEYPORT_JWT_SECRET, refusing claims the server would refuse. */
export async function runTokenCommand(argv: string[]): Promise<number> {
  let values: { sub?: string | undefined; owner?: string | undefined; tier?: string | undefined; ttl: string };
  try {
    values = parseArgs({
      args: argv,
      options: { sub: { type: "string" }, owner: { type: "string" }, tier: { type: "string" }, ttl: { type: "string", default: "3600" } },
      strict: true,
    }).values as typeof values;
  } catch (error) {
    process.stderr.write(badUsage("token", error instanceof Error ? error.message : "bad arguments"));
    return 2;
  }
  if (values.sub === undefined) {
    process.stderr.write(badUsage("token", "--sub is required"));
    return 2;
  }
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) {
    process.stderr.write("--ttl must be a positive number of seconds\n");
    return 2;
  }
  const runtime = loadRuntimeConfig({ quiet: true });
  if (runtime === undefined) return 1;
  const { config } = runtime;
  if (ttl > config.jwt.maxTtlSeconds) {
    process.stderr.write(`--ttl ${ttl} is longer than the server accepts (KEYPORT_JWT_MAX_TTL_SECONDS=${config.jwt.maxTtlSeconds})\n`);
    return 2;
  }
  const verifier = config.jwt.verifier;
  if (verifier.kind !== "secret") {
    process.stderr.write("keyport token signs with KEYPORT_JWT_SECRET; with a public key or JWKS, tokens come from your identity provider.\n");
    return 1;
  }
  if (values.tier !== undefined && !Object.hasOwn(config.tiers, values.tier)) {
    process.stderr.write(`--tier ${values.tier} is not a configured tier (${Object.keys(config.tiers).join(", ")})\n`);
    return 2;
  }
  try {
    const token = await signDevToken({
      secret: verifier.secret,
      algorithm: verifier.algorithm,
      sub: values.sub,
      expiresInSeconds: ttl,
      ...(values.owner === undefined ? {} : { owner: values.owner }),
      ...(values.tier === undefined ? {} : { tier: values.tier }),
      ...(config.jwt.issuer === undefined ? {} : { issuer: config.jwt.issuer }),
      ...(config.jwt.audience === undefined ? {} : { audience: config.jwt.audience }),
    });
    // The secret the token was signed with must outlive this command; a generated encryption key
    // is left for `serve`, which checks the database before writing one.
    writeDevSecrets(runtime.generated.filter((secret) => secret.variable === "KEYPORT_JWT_SECRET"));
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (error) {
    if (!isAppError(error)) throw error;
    process.stderr.write(`${error.publicMessage}\n`);
    return 2;
  }
}
