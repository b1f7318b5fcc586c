// Child processes of the benchmark (mock provider, bare proxy, Keyport) and what /proc says
// about them: CPU time and peak memory. Linux only.
import { execFileSync, spawn } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { request as httpRequest } from "node:http";

/** Clock ticks per second for the utime/stime fields of /proc/<pid>/stat (usually 100). */
export function clockTicksPerSecond() {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/**
 * User + system CPU seconds a process has used so far, from /proc/<pid>/stat (all its threads,
 * including libuv's pool and exited threads). Fields 14 and 15, counted after the `(comm)` field
 * because the command name may contain spaces.
 * @param {number} pid
 * @param {number} ticksPerSecond
 */
export function readCpuSeconds(pid, ticksPerSecond) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) is fields[12].
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/**
 * Current and peak resident memory in bytes (`VmRSS`, `VmHWM` of /proc/<pid>/status).
 * @param {number} pid
 */
export function readMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = (name) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    return match === null ? 0 : Number(match[1]) * 1024;
  };
  return { rssBytes: kilobytes("VmRSS"), peakRssBytes: kilobytes("VmHWM") };
}

/**
 * Busy, total and stolen CPU time of the whole machine (ticks, from the first line of
 * /proc/stat), to see how much of the machine something other than the benchmark used during a
 * run.
 */
export function readMachineCpu() {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  // Steal: time the hypervisor gave this VM's CPUs to someone else (a noisy host).
  return { busyTicks: total - idle, totalTicks: total, stealTicks: values[7] ?? 0 };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
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

/**
 * @typedef {object} Child
 * @property {string} name
 * @property {number} pid
 * @property {string} logFile stdout and stderr of the child
 * @property {Promise<number | null>} exited resolves with the exit code (null after a signal)
 * @property {() => boolean} isRunning
 * @property {import("node:child_process").ChildProcess} process
 */

/**
 * Starts `node <args>` with exactly `env` (nothing inherited), output to `logFile`.
 * @param {{ name: string, args: string[], env: Record<string, string>, logFile: string, cwd: string }} options
 * @returns {Child}
 */
export function startChild({ name, args, env, logFile, cwd }) {
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  let running = true;
  const exited = new Promise((resolve) => {
    child.once("exit", (code) => {
      running = false;
      resolve(code);
    });
  });
  return { name, pid: child.pid, logFile, exited, isRunning: () => running, process: child };
}

/**
 * Polls `url` until it answers with any HTTP status; fails early when the child exits.
 * @param {Child} child
 * @param {string} url
 * @param {number} [timeoutMs]
 */
export async function waitUntilAnswering(child, url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`${child.name} exited during start; see ${child.logFile}`);
    if (await answers(url)) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not answer ${url} within ${timeoutMs} ms; see ${child.logFile}`);
}

function answers(url) {
  return new Promise((resolve) => {
    const request = httpRequest(url, { method: "GET", timeout: 1000 }, (response) => {
      response.resume();
      resolve(true);
    });
    request.once("timeout", () => request.destroy());
    request.once("error", () => resolve(false));
    request.end();
  });
}

/**
 * Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`.
 * @param {Child} child
 * @returns {Promise<number | null>} the exit code
 */
export async function stopChild(child, signal = "SIGTERM", timeoutMs = 15_000) {
  if (!child.isRunning()) return child.exited;
  child.process.kill(signal);
  const timer = setTimeout(() => child.process.kill("SIGKILL"), timeoutMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until the machine is nearly idle (this benchmark's processes are idle between runs, so
 * what is busy is something else), sampling `sampleMs` at a time, for at most `maxWaitMs`.
 * On a shared machine this keeps other programs' bursts out of the measured runs.
 * @param {{ ticksPerSecond: number, thresholdCores: number, sampleMs: number, maxWaitMs: number }} options
 * @returns {Promise<{ waitedMs: number, busyCores: number }>}
 */
export async function waitForQuiet({ ticksPerSecond, thresholdCores, sampleMs, maxWaitMs }) {
  const started = Date.now();
  for (;;) {
    const before = readMachineCpu();
    await sleep(sampleMs);
    const after = readMachineCpu();
    const busyCores = (after.busyTicks - before.busyTicks) / ticksPerSecond / (sampleMs / 1000);
    const waitedMs = Date.now() - started;
    if (busyCores <= thresholdCores || waitedMs >= maxWaitMs) return { waitedMs, busyCores };
  }
}
