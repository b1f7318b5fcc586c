import { MOCK_KEY_BEHAVIOURS } from "../mock-provider/types.js";

/** What `keyport <command> --help` prints; also the list `keyport help` shows. */
export type CommandHelp = {
  readonly name: string;
  /** The arguments after the command's name, as the usage line shows them. */
  readonly synopsis: string;
  /** One line for the command list. */
  readonly summary: string;
  /** A few lines on what the command does, when the summary is not enough. */
  readonly description?: string;
  /** `[flag, meaning]`; `--help` is added to every command. */
  readonly options: ReadonlyArray<readonly [string, string]>;
  /** `[variable, what for]`: the environment the command reads. */
  readonly env: ReadonlyArray<readonly [string, string]>;
};

// Commands that load the configuration validate all of it, so any variable of the README's
// Configuration table can stop them; the lists name the ones each command acts on.
const CONFIG_NOTE = "and the rest of the README's Configuration table: all of it is validated";
const DEV_SECRETS = [
  "NODE_ENV",
  "outside production, missing secrets are read from (or generated in) KEYPORT_DATA_DIR",
] as const;
const DATA_DIR = ["KEYPORT_DATA_DIR", "the SQLite file and development secrets (default ./data)"] as const;
const DATABASE_URL = ["DATABASE_URL", "postgres://… or sqlite:<path> (default: KEYPORT_DATA_DIR/keyport.db)"] as const;

export const COMMANDS: readonly CommandHelp[] = [
  {
    name: "serve",
    synopsis: "[--demo]",
    summary: "run Keyport (the default command); --demo runs OpenAI and Anthropic simulated, offline",
    description:
      "Serves the API, the gateway and the Settings page until SIGTERM or Ctrl-C. On SIGTERM /readyz fails\n" +
      "at once, new connections are taken for KEYPORT_SHUTDOWN_DELAY_MS, then calls in flight get\n" +
      "KEYPORT_DRAIN_TIMEOUT_MS to finish; Ctrl-C skips the delay. Outside production it prints a\n" +
      "Settings link, a token and example calls.",
    options: [["--demo", "run OpenAI and Anthropic simulated in the same process, with a demo key (not in production)"]],
    env: [
      ["HOST, PORT", "where to listen (default 127.0.0.1:8787)"],
      DEV_SECRETS,
      DATA_DIR,
      DATABASE_URL,
      ["ENCRYPTION_KEY, ENCRYPTION_KEY_PREVIOUS", "the master key, and older ones during a rotation"],
      ["KEYPORT_JWT_SECRET | _PUBLIC_KEY | _JWKS_URL", "how end users' tokens are verified"],
      ["REDIS_URL, KEYPORT_REDIS_PREFIX", "shared rate limits and cache invalidation"],
      ["OPENAI_BASE_URL, ANTHROPIC_BASE_URL", "the providers (--demo points them at the simulator)"],
      ["KEYPORT_SHUTDOWN_DELAY_MS, KEYPORT_DRAIN_TIMEOUT_MS", "how a SIGTERM stops the server"],
      ["…", CONFIG_NOTE],
    ],
  },
  {
    name: "migrate",
    synopsis: "",
    summary: "apply the database migrations and exit",
    description: "serve applies them too, under a lock; this runs them alone, e.g. before a deployment.",
    options: [],
    env: [DEV_SECRETS, DATA_DIR, DATABASE_URL, ["…", CONFIG_NOTE]],
  },
  {
    name: "gen-encryption-key",
    synopsis: "",
    summary: "print a new ENCRYPTION_KEY (64 hex characters)",
    options: [],
    env: [],
  },
  {
    name: "rotate-encryption-key",
    synopsis: "",
    summary: "rewrap every data key with the current ENCRYPTION_KEY",
    description:
      "Run it after every instance was restarted with the new key in ENCRYPTION_KEY and the old one in\n" +
      "ENCRYPTION_KEY_PREVIOUS; safe to run again. Exit 1 while data keys remain on an old key.",
    options: [],
    env: [
      ["ENCRYPTION_KEY", "the new master key"],
      ["ENCRYPTION_KEY_PREVIOUS", "the old master keys, comma-separated"],
      DEV_SECRETS,
      DATA_DIR,
      DATABASE_URL,
      ["…", CONFIG_NOTE],
    ],
  },
  {
    name: "token",
    synopsis: "--sub <user-id> [--tier <tier>] [--owner project:<id>] [--ttl <seconds>]",
    summary: "print a JWT signed with KEYPORT_JWT_SECRET (for trying things out)",
    options: [
      ["--sub <user-id>", "the token's subject (required)"],
      ["--tier <tier>", "a tier of KEYPORT_TIERS (default: none, so KEYPORT_DEFAULT_TIER applies)"],
      ["--owner <owner>", "user:<id> or project:<id> (default user:<sub>)"],
      ["--ttl <seconds>", "lifetime (default 3600, at most KEYPORT_JWT_MAX_TTL_SECONDS)"],
    ],
    env: [
      ["KEYPORT_JWT_SECRET", "the signing secret (with a public key or JWKS, tokens come from your identity provider)"],
      ["KEYPORT_JWT_ALGORITHM, KEYPORT_JWT_ISSUER, KEYPORT_JWT_AUDIENCE", "put in the token as the server checks them"],
      ["KEYPORT_JWT_MAX_TTL_SECONDS, KEYPORT_TIERS", "the limits --ttl and --tier are checked against"],
      DEV_SECRETS,
      DATA_DIR,
      ["…", CONFIG_NOTE],
    ],
  },
  {
    name: "mock-provider",
    synopsis: "[options]",
    summary: "run the local OpenAI + Anthropic simulator",
    description:
      "Runs until interrupted (Ctrl-C). Control API (for scripts): POST /__mock/keys {\"key\",\"behaviour\"},\n" +
      "POST /__mock/faults, DELETE /__mock/faults, GET /__mock/requests.",
    options: [
      ["--host <address>", "interface to listen on (default 127.0.0.1)"],
      ["--port <number>", "port to listen on (default 8788; 0 picks a free one)"],
      ["--latency-ms <number>", "delay before every response, in milliseconds (default 0)"],
      ["--accept-unknown-keys", "treat keys not given with --key as valid (default: 401)"],
      ["--key <key>=<behaviour>", `key behaviour: ${MOCK_KEY_BEHAVIOURS.join(" | ")} (repeatable)`],
    ],
    env: [],
  },
  {
    name: "portal-link",
    synopsis: "--sub <user-id> [--owner project:<id>] [--tier <tier>] [--return-url <url>]",
    summary: "print a one-time link to a user's Settings page",
    description:
      "Made in the database directly: what a platform backend gets from POST /api/v1/portal-sessions.",
    options: [
      ["--sub <user-id>", "the user (required)"],
      ["--owner <owner>", "user:<id> or project:<id> (default user:<sub>)"],
      ["--tier <tier>", "a tier of KEYPORT_TIERS (default KEYPORT_DEFAULT_TIER)"],
      ["--return-url <url>", "where the page's way back leads (http or https)"],
    ],
    env: [
      DATA_DIR,
      DATABASE_URL,
      ["KEYPORT_PUBLIC_URL", "the link's origin (default http://HOST:PORT)"],
      ["KEYPORT_PORTAL_LINK_TTL_SECONDS", "how long the link can be opened"],
      ["KEYPORT_TIERS, KEYPORT_DEFAULT_TIER", "the tiers --tier is checked against"],
      DEV_SECRETS,
      ["…", CONFIG_NOTE],
    ],
  },
];

const MAX_LEFT_WIDTH = 26;
const HELP_OPTION = ["--help, -h", "print this help and exit"] as const;

export function findCommand(name: string): CommandHelp | undefined {
  return COMMANDS.find((command) => command.name === name);
}

/** The help of a command this CLI has (a typo in a command's own name is a programming error). */
export function helpOf(name: string): CommandHelp {
  const command = findCommand(name);
  if (command === undefined) throw new Error(`no help for command ${name}`);
  return command;
}

/** A wrong option or argument: what is wrong, the usage line and where the options are listed. */
export function badUsage(name: string, problem: string): string {
  return `${problem}\n${usageLine(helpOf(name))}Run keyport ${name} --help for the options.\n`;
}

/** `usage: keyport token --sub …`, for error messages. */
export function usageLine(command: CommandHelp): string {
  return `usage: keyport ${command.name}${command.synopsis === "" ? "" : ` ${command.synopsis}`}\n`;
}

/** The full help of one command. */
export function commandHelp(command: CommandHelp): string {
  const parts = [usageLine(command), `\n${capitalise(command.summary)}.\n`];
  if (command.description !== undefined) parts.push(`${command.description}\n`);
  parts.push(`\nOptions:\n${columns([...command.options, HELP_OPTION])}`);
  parts.push(command.env.length === 0 ? "\nEnvironment: none.\n" : `\nEnvironment:\n${columns(command.env)}`);
  return parts.join("");
}

/** `keyport help`: every command with its summary. */
export function commandList(): string {
  const rows = COMMANDS.map((command) => [command.name, command.summary] as const);
  return (
    "usage: keyport <command> [options]\n\n" +
    `Commands:\n${columns(rows)}\n` +
    "keyport <command> --help shows a command's options and the environment it reads.\n" +
    "Without a command, keyport runs serve.\n"
  );
}

/** Two columns; a left cell wider than the column puts its text on the next line. */
function columns(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.min(MAX_LEFT_WIDTH, Math.max(...rows.map(([left]) => left.length)));
  return rows
    .map(([left, right]) =>
      left.length > width ? `  ${left}\n  ${" ".repeat(width)}  ${right}\n` : `  ${left.padEnd(width)}  ${right}\n`,
    )
    .join("");
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
