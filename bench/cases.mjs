// What is sent: four calls (OpenAI chat completions and Anthropic messages, plain and streamed),
// each to three targets (the mock directly, the bare proxy, Keyport), and in the scale check to a
// fourth: a second Keyport whose store holds 100,000 owners' keys and 5 million usage records; in
// the budget variant the fourth is a second Keyport whose owner has a monthly budget.

/** @typedef {"direct" | "bare" | "keyport" | "seeded" | "budget"} TargetName */
export const TARGET_NAMES = /** @type {const} */ (["direct", "bare", "keyport"]);
export const SCALE_TARGET_NAMES = /** @type {const} */ ([...TARGET_NAMES, "seeded"]);
export const BUDGET_TARGET_NAMES = /** @type {const} */ ([...TARGET_NAMES, "budget"]);

/** Targets that are Keyport (and take its JWT where the SDKs put the API key). */
export const isKeyportTarget = (/** @type {TargetName} */ target) => target === "keyport" || target === "seeded" || target === "budget";

/**
 * @typedef {object} Target
 * @property {TargetName} name
 * @property {string} origin e.g. http://127.0.0.1:9000
 * @property {number | undefined} pid the process whose CPU is charged to this target (the proxy; the mock for direct)
 */

/**
 * @typedef {object} BenchCase
 * @property {string} id
 * @property {"openai" | "anthropic"} provider
 * @property {boolean} stream
 * @property {Buffer} body
 * @property {string} providerPath path on the provider (the mock)
 * @property {string} gatewayPath the same call on Keyport and on the bare proxy
 * @property {string} streamEnd text the last event of a complete stream contains
 */

const openAiBody = (stream) =>
  Buffer.from(
    JSON.stringify({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "You are a helpful assistant." },
        { role: "user", content: "Write one short sentence about the sea at night, please." },
      ],
      max_tokens: 64,
      ...(stream ? { stream: true } : {}),
    }),
  );

const anthropicBody = (stream) =>
  Buffer.from(
    JSON.stringify({
      model: "claude-haiku-4-5",
      max_tokens: 64,
      system: "You are a helpful assistant.",
      messages: [{ role: "user", content: "Write one short sentence about the sea at night, please." }],
      ...(stream ? { stream: true } : {}),
    }),
  );

/** @type {readonly BenchCase[]} */
export const CASES = [
  {
    id: "openai-chat",
    provider: "openai",
    stream: false,
    body: openAiBody(false),
    providerPath: "/v1/chat/completions",
    gatewayPath: "/openai/v1/chat/completions",
    streamEnd: "",
  },
  {
    id: "openai-chat-stream",
    provider: "openai",
    stream: true,
    body: openAiBody(true),
    providerPath: "/v1/chat/completions",
    gatewayPath: "/openai/v1/chat/completions",
    streamEnd: "data: [DONE]",
  },
  {
    id: "anthropic-messages",
    provider: "anthropic",
    stream: false,
    body: anthropicBody(false),
    providerPath: "/v1/messages",
    gatewayPath: "/anthropic/v1/messages",
    streamEnd: "",
  },
  {
    id: "anthropic-messages-stream",
    provider: "anthropic",
    stream: true,
    body: anthropicBody(true),
    providerPath: "/v1/messages",
    gatewayPath: "/anthropic/v1/messages",
    streamEnd: "message_stop",
  },
];

/**
 * @typedef {object} Credentials
 * @property {string} openaiKey provider key (direct and bare; also stored in Keyport as the owner's key)
 * @property {string} anthropicKey
 * @property {string} token Keyport JWT of the owner
 */

/**
 * The request one case makes against one target: Keyport gets the JWT where the SDKs put the API
 * key; the mock and the bare proxy get the provider key itself.
 * @param {BenchCase} benchCase
 * @param {TargetName} target
 * @param {Credentials} credentials
 * @returns {{ method: "POST", path: string, headers: Record<string, string>, body: Buffer }}
 */
export function requestFor(benchCase, target, credentials) {
  const isKeyport = isKeyportTarget(target);
  const path = target === "direct" ? benchCase.providerPath : benchCase.gatewayPath;
  /** @type {Record<string, string>} */
  const headers = { "content-type": "application/json", "content-length": String(benchCase.body.length) };
  if (benchCase.provider === "openai") {
    headers.authorization = `Bearer ${isKeyport ? credentials.token : credentials.openaiKey}`;
  } else {
    headers["x-api-key"] = isKeyport ? credentials.token : credentials.anthropicKey;
    headers["anthropic-version"] = "2023-06-01";
  }
  return { method: "POST", path, headers, body: benchCase.body };
}
