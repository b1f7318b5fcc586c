import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The `keyport` launcher; it runs the compiled CLI in dist/ (`npm run build` first). */
export const KEYPORT_BIN = fileURLToPath(new URL("../../bin/keyport.js", import.meta.url));

// Generous: a busy machine can take seconds just to load the CLI.
const DEFAULT_WAIT_MS = 30_000;

/**
 * Where a process under test finds "the providers" unless the test points it at a mock: a local
 * port nothing listens on, so no test can reach the real OpenAI or Anthropic, and every test
 * behaves the same with or without a route to them.
 */
export const NO_PROVIDER = { OPENAI_BASE_URL: "http://127.0.0.1:9/v1", ANTHROPIC_BASE_URL: "http://127.0.0.1:9" };

/**
 * PATH and HOME and nothing else from the developer's environment, plus `extra`: a variable such
 * as DATABASE_URL set in the shell must never reach a process under test. Provider URLs default
 * to `NO_PROVIDER`.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? tmpdir(), ...NO_PROVIDER, ...extra };
}

export type CliResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

export type CliProcess = {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in the stream; rejects if the process exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, options?: { stream?: "stdout" | "stderr"; timeoutMs?: number }): Promise<RegExpExecArray>;
  /** Resolves when the process has exited and its output is complete; rejects after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<CliResult>;
  /** SIGKILL when still running, then waits for the exit. */
  kill(): Promise<void>;
};

export type SpawnOptions = { env: Record<string, string>; cwd: string };

export type CliRunner = {
  start(args: readonly string[], options: SpawnOptions): CliProcess;
  /** Runs a command to completion. */
  run(args: readonly string[], options: SpawnOptions & { timeoutMs?: number }): Promise<CliResult>;
  /** Every output of every process started so far, for checks that a secret never appeared. */
  allOutput(): string;
  /** Kills every process still running; call it in `afterEach`. */
  killAll(): Promise<void>;
};

/** Spawns `node bin/keyport.js …` processes and keeps track of them so a test can always clean up. */
export function createCliRunner(): CliRunner {
  const started: CliProcess[] = [];
  const runner: CliRunner = {
    start(args, options) {
      const cliProcess = spawnCli(args, options);
      started.push(cliProcess);
      return cliProcess;
    },
    async run(args, options) {
      return runner.start(args, options).waitForExit(options.timeoutMs);
    },
    allOutput() {
      return started.map((cliProcess) => `${cliProcess.stdout()}\n${cliProcess.stderr()}`).join("\n");
    },
    async killAll() {
      await Promise.all(started.splice(0).map((cliProcess) => cliProcess.kill()));
    },
  };
  return runner;
}

function spawnCli(args: readonly string[], options: SpawnOptions): CliProcess {
  const child = spawn(process.execPath, [KEYPORT_BIN, ...args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { stdout: "", stderr: "" };
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  child.stdout?.on("data", (chunk: Buffer) => {
    output.stdout += chunk.toString("utf8");
    notify();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output.stderr += chunk.toString("utf8");
    notify();
  });
  // `close`, not `exit`: it fires once the output streams are drained too.
  const closed = new Promise<CliResult>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal, ...output }));
    child.once("error", () => resolve({ code: null, signal: null, ...output }));
  });
  let exited = false;
  void closed.then(() => {
    exited = true;
    notify();
  });

  const describe = () => `keyport ${args.join(" ")}\n--- stdout ---\n${output.stdout}\n--- stderr ---\n${output.stderr}`;

  return {
    child,
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    waitFor(pattern, waitOptions = {}) {
      const stream = waitOptions.stream ?? "stdout";
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output[stream]);
          if (match !== null) finish(() => resolve(match));
          else if (exited) finish(() => reject(new Error(`exited before printing ${pattern}: ${describe()}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no ${pattern} within ${waitOptions.timeoutMs ?? DEFAULT_WAIT_MS} ms: ${describe()}`))),
          waitOptions.timeoutMs ?? DEFAULT_WAIT_MS,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    waitForExit(timeoutMs = DEFAULT_WAIT_MS) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms: ${describe()}`)), timeoutMs);
        void closed.then((result) => {
          clearTimeout(timer);
          resolve(result);
        });
      });
    },
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await closed;
    },
  };
}

export type RunningServer = { process: CliProcess; url: string; banner: string };

/** Starts `keyport serve` (outside production) and waits until its development banner is complete. */
export async function startServe(cli: CliRunner, env: Record<string, string>, cwd: string): Promise<RunningServer> {
  const server = cli.start(["serve"], { env, cwd });
  const address = (await server.waitFor(/Keyport is running at (http:\/\/[\d.]+:\d+)/))[1] ?? "";
  await server.waitFor(/More tokens:.*\n/);
  return { process: server, url: address, banner: server.stdout() };
}

/** Sends SIGTERM and waits for the exit. */
export async function stopServe(server: RunningServer): Promise<CliResult> {
  server.process.child.kill("SIGTERM");
  return server.process.waitForExit();
}

/** Temporary directories, removed together at teardown. */
export function createTempDirs(prefix = "keyport-cli-") {
  const created: string[] = [];
  return {
    make(): string {
      const directory = mkdtempSync(path.join(tmpdir(), prefix));
      created.push(directory);
      return directory;
    },
    removeAll(): void {
      for (const directory of created.splice(0)) rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** A port that was free a moment ago (for checking that a refused start left nothing listening). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export type JsonResponse = {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read response fields freely
};

/** One request to a running Keyport, with an optional bearer token and JSON body. */
export async function requestJson(
  method: string,
  url: string,
  options: { token?: string; body?: unknown } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}
