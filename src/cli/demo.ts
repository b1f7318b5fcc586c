import { startMockProvider } from "../mock-provider/mock-provider.js";
import type { MockProvider } from "../mock-provider/types.js";

/** The demo's own key for the simulated OpenAI: the simulator accepts it, the real OpenAI never sees it. */
export const DEMO_OPENAI_KEY = "sk-proj-DEMO-keyport-simulated-provider-0123456789abcdef";
/** The demo's own key for the simulated Anthropic. */
export const DEMO_ANTHROPIC_KEY = `sk-ant-api03-DEMO-keyport-simulated-provider-${"0".repeat(48)}AA`;
/** The demo's platform keys, so users on plans without BYOK get answers too. */
const DEMO_PLATFORM_OPENAI_KEY = "sk-proj-DEMO-keyport-platform-key-0123456789abcdefghij";
const DEMO_PLATFORM_ANTHROPIC_KEY = `sk-ant-api03-DEMO-keyport-platform-key-${"1".repeat(54)}AA`;

export type Demo = {
  mock: MockProvider;
  /** The environment with every provider setting pointed at the simulator. */
  env: Record<string, string | undefined>;
};

/**
 * `keyport serve --demo`: the provider simulator runs in this process and every provider URL and
 * platform key points at it, so nothing leaves the machine and no real key is needed. The demo
 * keeps its own database (`./data/demo`) unless one is configured, so demo keys never mix with
 * real ones.
 */
export async function startDemo(env: Record<string, string | undefined>): Promise<Demo> {
  const mock = await startMockProvider({
    keys: {
      [DEMO_OPENAI_KEY]: "valid",
      [DEMO_ANTHROPIC_KEY]: "valid",
      [DEMO_PLATFORM_OPENAI_KEY]: "valid",
      [DEMO_PLATFORM_ANTHROPIC_KEY]: "valid",
    },
    recordLimit: 0,
  });
  const hasDatabase = (env.KEYPORT_DATA_DIR ?? "").trim() !== "" || (env.DATABASE_URL ?? "").trim() !== "";
  return {
    mock,
    env: {
      ...env,
      ...(hasDatabase ? {} : { KEYPORT_DATA_DIR: "data/demo" }),
      OPENAI_BASE_URL: mock.openaiBaseUrl,
      ANTHROPIC_BASE_URL: mock.anthropicBaseUrl,
      PLATFORM_OPENAI_API_KEY: DEMO_PLATFORM_OPENAI_KEY,
      PLATFORM_ANTHROPIC_API_KEY: DEMO_PLATFORM_ANTHROPIC_KEY,
    },
  };
}
