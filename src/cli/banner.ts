import type { Config } from "../config/config-schema.js";

export type BannerInput = {
  config: Config;
  /** Where Keyport listens, e.g. `http://127.0.0.1:8787`. */
  address: string;
  /** One-time link to the demo user's Settings page, and until when it works. */
  portalLink: { url: string; expiresAt: string };
  /** A development JWT for the demo user. */
  token: string;
  tokenLifetimeSeconds: number;
  sub: string;
  tier: string;
  /** Set in demo mode: the simulator's URL and the demo key it accepts. */
  demo?: { providerUrl: string; openAiKey: string };
  /** Set when the operator token is the generated development one (this file holds it). */
  adminTokenFile?: string;
};

const CHAT_BODY = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`;

/**
 * What `npm start` prints outside production: a working Settings link, a token, and commands
 * that work whether or not this machine reaches the providers. Without `--demo` no command sends
 * a made-up key anywhere: storing a key uses the user's own (`$OPENAI_API_KEY`), and the way to
 * try calls without one is the demo.
 */
export function developmentBanner(input: BannerInput): string {
  const { config, address, portalLink, token, tokenLifetimeSeconds, sub, tier, demo, adminTokenFile } = input;
  const auth = `-H "Authorization: Bearer ${token}"`;
  const json = "-H 'content-type: application/json'";
  const database = config.database.kind === "sqlite" ? config.database.path : "PostgreSQL";
  const lines = [
    "",
    `Keyport is running at ${address} (database: ${database})`,
    "",
  ];
  if (demo !== undefined) {
    lines.push(
      `Demo mode: OpenAI and Anthropic are simulated at ${demo.providerUrl}; nothing leaves this machine.`,
      "",
      `1. Open the Settings page of user:${sub} (one-time link, until ${portalLink.expiresAt}):`,
      `   ${portalLink.url}`,
      "",
      "2. Add this demo OpenAI key there (the simulator accepts it), or with curl:",
      `   ${demo.openAiKey}`,
      `   curl -s -X POST ${address}/api/v1/api-keys ${auth} ${json} -d '{"provider":"openai","apiKey":"${demo.openAiKey}","label":"Demo"}'`,
      "",
      "3. Call the gateway with the official OpenAI SDK (your Keyport token is the API key), or with curl:",
      `   node --input-type=module -e 'import OpenAI from "openai"; const openai = new OpenAI({ baseURL: "${address}/openai/v1", apiKey: "${token}" }); const reply = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] }); console.log(reply.choices[0].message.content)'`,
      `   curl -s ${address}/openai/v1/chat/completions ${auth} ${json} -d '${CHAT_BODY}'`,
      "",
      "4. See the call under Usage on the Settings page.",
      "",
    );
  } else {
    lines.push(
      `Settings page of user:${sub} (one-time link, until ${portalLink.expiresAt}):`,
      `  ${portalLink.url}`,
      "",
      "Store your own OpenAI key (set OPENAI_API_KEY first; Keyport checks it with OpenAI):",
      `  curl -s -X POST ${address}/api/v1/api-keys ${auth} ${json} -d "{\\"provider\\":\\"openai\\",\\"apiKey\\":\\"\${OPENAI_API_KEY:?set OPENAI_API_KEY to your OpenAI key}\\",\\"label\\":\\"Mine\\"}"`,
      "",
      "List your keys:",
      `  curl -s ${address}/api/v1/api-keys ${auth}`,
      "",
      "No provider key at hand? Try it all offline, with simulated providers: npm start -- --demo",
      "",
    );
  }
  lines.push(`A development token for user:${sub} (tier ${tier}, valid ${formatLifetime(tokenLifetimeSeconds)}):`, `  ${token}`, "");
  const operatorToken = adminTokenFile === undefined ? "$KEYPORT_ADMIN_TOKEN" : `$(cat ${adminTokenFile})`;
  lines.push(
    `Settings links for any user, as your backend makes them${adminTokenFile === undefined ? "" : ` (KEYPORT_ADMIN_TOKEN is in ${adminTokenFile})`}:`,
    `  curl -s -X POST ${address}/api/v1/portal-sessions -H "Authorization: Bearer ${operatorToken}" ${json} -d '{"sub":"${sub}","tier":"${tier}"}'`,
    `  or: npx keyport portal-link --sub ${sub} --tier ${tier}${demo === undefined ? "" : " (with KEYPORT_DATA_DIR=data/demo)"}`,
    "",
    `More tokens: npx keyport token --sub <user> --tier premium. API docs: ${address}/docs`,
    "",
  );
  return lines.join("\n");
}

function formatLifetime(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
