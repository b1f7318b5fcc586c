import { parseArgs } from "node:util";
import { badUsage, commandHelp, commandList, findCommand } from "./command-help.js";

// Commands are loaded on demand: `token` or `gen-encryption-key` need not load the HTTP server.
const keyCommands = () => import("./commands/key-commands.js");

/** Entry of the `keyport` binary; returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  // `keyport --demo` is `keyport serve --demo`.
  const [command = "serve", ...rest] = argv[0] === "--demo" ? ["serve", ...argv] : argv;
  if (command === "help" || command === "--help" || command === "-h") return printHelp(rest[0]);
  if (findCommand(command) === undefined) {
    process.stderr.write(`unknown command: ${command}\n${commandList()}`);
    return 2;
  }
  // Help is answered before a command looks at its other arguments or the environment, so it
  // works with a broken configuration and changes nothing.
  if (rest.includes("--help") || rest.includes("-h")) return printHelp(command);
  switch (command) {
    case "serve":
      return (await import("./commands/serve.js")).runServeCommand(rest);
    case "migrate":
      return withoutArguments(command, rest) ?? (await keyCommands()).runMigrateCommand();
    case "gen-encryption-key":
      return withoutArguments(command, rest) ?? (await import("./commands/gen-encryption-key.js")).runGenEncryptionKeyCommand();
    case "rotate-encryption-key":
      return withoutArguments(command, rest) ?? (await keyCommands()).runRotateEncryptionKeyCommand();
    case "token":
      return (await import("./commands/token.js")).runTokenCommand(rest);
    case "portal-link":
      return (await import("./commands/portal-link.js")).runPortalLinkCommand(rest);
    case "mock-provider":
      return (await import("./commands/mock-provider.js")).runMockProviderCommand(rest);
    default:
      throw new Error(`command ${command} has help but no handler`);
  }
}

function printHelp(topic: string | undefined): number {
  if (topic === undefined) {
    process.stdout.write(commandList());
    return 0;
  }
  const command = findCommand(topic);
  if (command === undefined) {
    process.stderr.write(`unknown command: ${topic}\n${commandList()}`);
    return 2;
  }
  process.stdout.write(commandHelp(command));
  return 0;
}

/** Exit code 2 with a message when a command that takes no arguments got some; else undefined. */
function withoutArguments(command: string, argv: string[]): number | undefined {
  try {
    parseArgs({ args: argv, options: {}, strict: true, allowPositionals: false });
    return undefined;
  } catch (error) {
    process.stderr.write(badUsage(command, error instanceof Error ? error.message : "bad arguments"));
    return 2;
  }
}
