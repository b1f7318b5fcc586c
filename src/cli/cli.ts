import { runMockProviderCommand } from "./commands/mock-provider.js";
import {
  runGenEncryptionKeyCommand,
  runMigrateCommand,
  runRotateEncryptionKeyCommand,
  runTokenCommand,
} from "./commands/key-commands.js";
import { runServeCommand } from "./commands/serve.js";

const USAGE = `usage: keyport <command>

  serve                   run Keyport (default)
  migrate                 apply database migrations and exit
  gen-encryption-key      print a new ENCRYPTION_KEY (64 hex characters)
  rotate-encryption-key   rewrap every data key with the current ENCRYPTION_KEY
  token --sub <id>        print a JWT signed with KEYPORT_JWT_SECRET (for trying things out)
  mock-provider           run the local OpenAI + Anthropic simulator
`;

/** Entry of the `keyport` binary; returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  switch (command) {
    case "serve":
      return runServeCommand();
    case "migrate":
      return runMigrateCommand();
    case "gen-encryption-key":
      return runGenEncryptionKeyCommand();
    case "rotate-encryption-key":
      return runRotateEncryptionKeyCommand();
    case "token":
      return runTokenCommand(rest);
    case "mock-provider":
      return runMockProviderCommand(rest);
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command: ${command}\n${USAGE}`);
      return 2;
  }
}
