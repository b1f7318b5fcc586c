import { parseArgs } from "node:util";
import { startMockProvider } from "../../mock-provider/mock-provider.js";
import type { MockKeyBehaviour } from "../../mock-provider/types.js";
import { MOCK_KEY_BEHAVIOURS } from "../../mock-provider/types.js";
import { badUsage, commandHelp, helpOf } from "../command-help.js";

const DEFAULT_PORT = 8788;

/** Output and the stop condition; the defaults are the process's streams and SIGINT/SIGTERM. */
export type MockProviderCommandIo = {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the mock should shut down. */
  untilStopped(): Promise<void>;
};

/** `keyport mock-provider`: returns the exit code (0 after a clean shutdown, 2 for bad usage). */
export async function runMockProviderCommand(
  argv: string[],
  io: MockProviderCommandIo = processIo(),
): Promise<number> {
  const command = parseOptions(argv);
  if (command.kind === "error") {
    io.err(badUsage("mock-provider", command.message));
    return 2;
  }
  if (command.kind === "help") {
    io.out(commandHelp(helpOf("mock-provider")));
    return 0;
  }
  const parsed = command.options;
  const mock = await startMockProvider({
    host: parsed.host,
    port: parsed.port,
    latencyMs: parsed.latencyMs,
    acceptUnknownKeys: parsed.acceptUnknownKeys,
    keys: parsed.keys,
  });
  io.out(
    [
      `Mock provider listening on ${mock.url}`,
      "Point Keyport (or any SDK) at it with:",
      `  OPENAI_BASE_URL=${mock.openaiBaseUrl}`,
      `  ANTHROPIC_BASE_URL=${mock.anthropicBaseUrl}`,
      parsed.acceptUnknownKeys ? "Unknown keys are accepted as valid." : "Unknown keys get a 401.",
      "",
    ].join("\n"),
  );
  await io.untilStopped();
  await mock.close();
  io.out("Mock provider stopped.\n");
  return 0;
}

type CommandOptions = {
  host: string;
  port: number;
  latencyMs: number;
  acceptUnknownKeys: boolean;
  keys: Record<string, MockKeyBehaviour>;
};

type ParsedCommand = { kind: "run"; options: CommandOptions } | { kind: "help" } | { kind: "error"; message: string };

function parseOptions(argv: string[]): ParsedCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: String(DEFAULT_PORT) },
        "latency-ms": { type: "string", default: "0" },
        "accept-unknown-keys": { type: "boolean", default: false },
        key: { type: "string", multiple: true, default: [] },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    // parseArgs errors name the option, never a value worth hiding.
    return { kind: "error", message: error instanceof Error ? error.message : "invalid arguments" };
  }
  if (values.help) return { kind: "help" };
  const fail = (message: string): ParsedCommand => ({ kind: "error", message });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) return fail("--port must be an integer from 0 to 65535");
  const latencyMs = Number(values["latency-ms"]);
  if (!Number.isInteger(latencyMs) || latencyMs < 0) return fail("--latency-ms must be an integer of 0 or more");
  const keys: Record<string, MockKeyBehaviour> = {};
  for (const entry of values.key) {
    const separator = entry.lastIndexOf("=");
    const behaviour = MOCK_KEY_BEHAVIOURS.find((candidate) => candidate === entry.slice(separator + 1));
    if (separator <= 0 || behaviour === undefined) {
      return fail(`--key expects KEY=BEHAVIOUR with BEHAVIOUR one of ${MOCK_KEY_BEHAVIOURS.join(", ")}`);
    }
    keys[entry.slice(0, separator)] = behaviour;
  }
  return {
    kind: "run",
    options: { host: values.host, port, latencyMs, acceptUnknownKeys: values["accept-unknown-keys"], keys },
  };
}

function processIo(): MockProviderCommandIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    untilStopped: () =>
      new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      }),
  };
}
