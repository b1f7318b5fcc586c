// Commands are loaded on demand: `token` or `gen-encryption-key` need not load the HTTP server.
const keyCommands = () => import("./commands/key-commands.js");

const USAGE = `usage: keyport <command>

  serve [--demo]          run Keyport (default); --demo runs OpenAI and Anthropic simulated, offline
  migrate                 apply database migrations and exit
  gen-encryption-key      print a new ENCRYPTION_KEY (64 hex characters)
  rotate-encryption-key   rewrap every data key with the current ENCRYPTION_KEY
  token --sub <id>        print a JWT signed with KEYPORT_JWT_SECRET (for trying things out)
  mock-provider           run the local OpenAI + Anthropic simulator
  portal-link --sub <id>  print a one-time link to a user's Settings page
`;

/** Entry of the `keyport` binary; returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  // `keyport --demo` is `keyport serve --demo`.
  const [command = "serve", ...rest] = argv[0] === "--demo" ? ["serve", ...argv] : argv;
  switch (command) {
    case "serve":
      return (await import("./commands/serve.js")).runServeCommand(rest);
    case "migrate":
      return (await keyCommands()).runMigrateCommand();
    case "gen-encryption-key":
      return (await import("./commands/gen-encryption-key.js")).runGenEncryptionKeyCommand();
    case "rotate-encryption-key":
      return (await keyCommands()).runRotateEncryptionKeyCommand();
    case "token":
      return (await import("./commands/token.js")).runTokenCommand(rest);
    case "portal-link":
      return (await import("./commands/portal-link.js")).runPortalLinkCommand(rest);
    case "mock-provider":
      return (await import("./commands/mock-provider.js")).runMockProviderCommand(rest);
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
