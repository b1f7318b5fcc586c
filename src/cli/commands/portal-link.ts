import { parseArgs } from "node:util";
import { openStore } from "../../app.js";
import { SUBJECT_PATTERN } from "../../auth/principal.js";
import type { Config } from "../../config/config-schema.js";
import { OWNER_PATTERN } from "../../lib/domain.js";
import { systemClock } from "../../lib/clock.js";
import { createPortalSessions, portalLinkUrl } from "../../portal/portal-sessions.js";
import { badUsage } from "../command-help.js";
import { loadRuntimeConfig } from "../load-runtime-config.js";

/** `keyport portal-link`: a Settings link for trying the page, without the operator API. */
export async function runPortalLinkCommand(argv: string[]): Promise<number> {
  let values: { sub?: string | undefined; owner?: string | undefined; tier?: string | undefined; "return-url"?: string | undefined };
  try {
    values = parseArgs({
      args: argv,
      options: { sub: { type: "string" }, owner: { type: "string" }, tier: { type: "string" }, "return-url": { type: "string" } },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(badUsage("portal-link", error instanceof Error ? error.message : "bad arguments"));
    return 2;
  }
  const { sub, owner } = values;
  if (sub === undefined || !SUBJECT_PATTERN.test(sub)) {
    process.stderr.write(sub === undefined ? badUsage("portal-link", "--sub is required") : `--sub must match ${SUBJECT_PATTERN.source}\n`);
    return 2;
  }
  if (owner !== undefined && !OWNER_PATTERN.test(owner)) {
    process.stderr.write("--owner must be user:<id> or project:<id>\n");
    return 2;
  }
  const returnUrl = values["return-url"];
  if (returnUrl !== undefined && !/^https?:\/\//.test(returnUrl)) {
    process.stderr.write("--return-url must be an http(s) URL\n");
    return 2;
  }
  const config = loadRuntimeConfig({ quiet: true })?.config;
  if (config === undefined) return 1;
  const tier = values.tier ?? config.defaultTier;
  if (!Object.hasOwn(config.tiers, tier)) {
    process.stderr.write(`--tier ${tier} is not a configured tier (${Object.keys(config.tiers).join(", ")})\n`);
    return 2;
  }
  const store = await openStore(config);
  try {
    const sessions = createPortalSessions({
      repo: store.portalSessions,
      clock: systemClock,
      linkTtlSeconds: config.portal.linkTtlSeconds,
      sessionTtlSeconds: config.portal.sessionTtlSeconds,
    });
    const link = await sessions.createLink({ owner: owner ?? `user:${sub}`, sub, tier, returnUrl: returnUrl ?? null, theme: {} });
    process.stdout.write(`${portalLinkUrl(publicOrigin(config), link.token)}\n`);
    process.stderr.write(`One-time link for ${owner ?? `user:${sub}`} (tier ${tier}), valid until ${link.expiresAt}.\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** Where browsers reach this configuration's Keyport. */
export function publicOrigin(config: Config): string {
  if (config.portal.publicUrl !== undefined) return config.portal.publicUrl;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}`;
}
