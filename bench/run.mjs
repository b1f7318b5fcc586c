// `npm run bench`: measures what Keyport adds to a call, against the mock provider called
// directly and a bare pass-through proxy, and writes the results to bench/results/.
//
//   npm run bench                 full run (3 repeats, mock latency 0 and 20 ms)
//   npm run bench -- --quick      one short repeat, for development
//
// See bench/README.md for what each number means.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runPass } from "./pass.mjs";
import { clockTicksPerSecond } from "./processes.mjs";
import { formatCpuProfile } from "./profile.mjs";
import { aggregatePass, formatPass } from "./report.mjs";
import { scaleChecks } from "./scale.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    scale: { type: "boolean", default: false },
    budget: { type: "boolean", default: false },
    repeats: { type: "string" },
    rate: { type: "string" },
    "open-seconds": { type: "string" },
    "closed-seconds": { type: "string" },
    connections: { type: "string" },
    latencies: { type: "string" },
    "closed-streams": { type: "boolean", default: false },
    "quiet-wait": { type: "string" },
    keep: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    "gc-trace": { type: "boolean", default: false },
    "keyport-env": { type: "string", multiple: true },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(`usage: npm run bench -- [options]

  --quick                one repeat of short runs (development)
  --repeats <n>          repeats of every run (default 3; quick 1)
  --rate <n>             open-loop requests per second (default 200)
  --open-seconds <s>     length of an open-loop run (default 3; quick 1)
  --closed-seconds <s>   approximate length of a closed-loop run, 0 for none (default 2; quick 1)
  --connections <n>      closed-loop connections (default 50)
  --latencies <list>     mock latencies in ms, one pass each (default 0,20)
  --closed-streams       also run the streamed cases closed loop
  --quiet-wait <s>       per pass, wait up to this long in total for other programs to go quiet
                         before runs (default 20; 0: never wait)
  --keep                 keep the temporary directory (logs, SQLite file) of each pass
  --cpu-prof             run Keyport under V8's profiler and print where its CPU went (slows
                         Keyport down: the ratios of such a run are not comparable)
  --gc-trace             run bare and Keyport with V8's --trace-gc and print their collections per
                         request (young-generation scavenges, full collections, main-thread pauses)
  --keyport-env K=V      one more setting for Keyport's environment (repeatable), e.g.
                         KEYPORT_ACCESS_LOG=false to measure the access log's cost
  --scale                the scale check instead: one pass at mock latency 0 with a second Keyport
                         whose store is seeded with 100,000 owners' keys and 5 million usage
                         records, its runs interleaved with the others; compares the two Keyports'
                         added p50 and times a month's usage report for one owner
  --budget               also run a second Keyport whose owner has a monthly budget (target
                         "budget"), interleaved with the others: what the budget check adds
`);
  process.exit(0);
}

/** @param {string | undefined} text @param {number} fallback */
const numberOption = (text, fallback) => {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`not a number: ${text}`);
  return value;
};

const quick = values.quick;
const basePlan = {
  repeats: Math.max(1, Math.round(numberOption(values.repeats, quick ? 1 : 3))),
  ratePerSecond: numberOption(values.rate, 200),
  openSeconds: numberOption(values["open-seconds"], quick ? 1 : 3),
  closedSeconds: numberOption(values["closed-seconds"], quick ? 1 : 2),
  closedConnections: Math.max(1, Math.round(numberOption(values.connections, 50))),
  closedStreams: values["closed-streams"],
  warmUpRequests: quick ? 500 : 1500,
  quietWaitSeconds: numberOption(values["quiet-wait"], 20),
  scale: values.scale,
  budget: values.budget,
  cpuProfile: values["cpu-prof"],
  gcTrace: values["gc-trace"],
  keyportEnv: Object.fromEntries(
    (values["keyport-env"] ?? []).map((entry) => {
      const at = entry.indexOf("=");
      if (at < 1) throw new Error(`--keyport-env needs NAME=VALUE: ${entry}`);
      return [entry.slice(0, at), entry.slice(at + 1)];
    }),
  ),
};
const latencies = (values.latencies ?? "0,20").split(",").map((entry) => Math.round(numberOption(entry.trim(), 0)));

function log(line) {
  process.stdout.write(`${line}\n`);
}

function gitCommit() {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** Newest modification time of the TypeScript sources, to warn about a stale dist/. */
function newestSourceMtime(directory) {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(full));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

async function main() {
  const built = path.join(root, "dist", "cli", "cli.js");
  if (!existsSync(built)) {
    process.stderr.write("dist/ is missing: run `npm run build` first (Keyport runs from the compiled code).\n");
    return 1;
  }
  if (newestSourceMtime(path.join(root, "src")) > statSync(built).mtimeMs + 1000) {
    log("Warning: src/ has changes newer than dist/; run `npm run build` to measure them.");
  }

  const cpus = os.cpus();
  const meta = {
    startedAt: new Date().toISOString(),
    machine: {
      cpuModel: cpus[0]?.model ?? "unknown",
      cores: cpus.length,
      memoryBytes: os.totalmem(),
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: os.loadavg(),
    },
    node: process.version,
    git: gitCommit(),
    options: { quick, latencies, ...basePlan },
  };
  log(`Keyport benchmark: ${meta.machine.cpuModel}, ${meta.machine.cores} cores, Node ${meta.node}, commit ${meta.git.commit ?? "unknown"}${meta.git.dirty ? " (with uncommitted changes)" : ""}`);
  const perCore = (meta.machine.loadAverageAtStart[0] ?? 0) / meta.machine.cores;
  if (perCore > 0.5) log(`Warning: load average ${meta.machine.loadAverageAtStart[0]?.toFixed(2)} on ${meta.machine.cores} cores; other programs will disturb the numbers.`);

  const ticksPerSecond = clockTicksPerSecond();
  const passes = [];
  const passPlans = values.scale
    ? [{ ...basePlan, mockLatencyMs: 0, scale: true }]
    : latencies.map((mockLatencyMs) => ({ ...basePlan, mockLatencyMs, scale: false }));
  for (const passPlan of passPlans) {
    const { mockLatencyMs } = passPlan;
    log(`\nPass: mock latency ${mockLatencyMs} ms${passPlan.scale ? ", Keyport on an empty store and on a seeded one" : passPlan.budget ? ", Keyport without and with an owner budget" : ""}`);
    const pass = await runPass(passPlan, { root, ticksPerSecond, log, keepFiles: values.keep });
    const summary = aggregatePass(pass);
    const text = formatPass(pass, summary);
    log(text);
    if (pass.cpuProfile !== null) log(formatCpuProfile(pass.cpuProfile));
    if (pass.workDir !== undefined) log(`Logs and database kept in ${pass.workDir}`);
    if (pass.usageReport !== null) log(`Usage report, one owner's month (${pass.usageReport.requestsInMonth} records): p50 ${pass.usageReport.p50Ms.toFixed(1)} ms, max ${pass.usageReport.maxMs.toFixed(1)} ms`);
    passes.push({ ...summary, mockLatencyMs, plan: pass.plan, seeded: pass.seeded, seededStore: pass.seededStore, usageReport: pass.usageReport, memory: pass.memory, usageRecords: pass.usageRecords, keyportTraffic: pass.keyportTraffic, keyportExitCode: pass.keyportExitCode, quietWaitSeconds: pass.quietWaitSeconds, cpuProfile: pass.cpuProfile, gc: pass.gc, keyportLog: pass.keyportLog, warmUpErrors: pass.warmUpErrors, runs: pass.runs });
  }

  if (values.scale && passes.length === 1 && passes[0].usageReport !== null) {
    const [scalePass] = passes;
    const checks = scaleChecks(scalePass, scalePass.usageReport);
    log("\nScale check:");
    for (const entry of checks) log(`  [${entry.pass ? "PASS" : "FAIL"}] ${entry.name}: ${entry.value?.toFixed(2)} (${entry.limit})`);
    scalePass.checks.push(...checks);
  }

  const finishedAt = new Date();
  const resultsDir = path.join(root, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `bench-${finishedAt.toISOString().replace(/[:.]/g, "-")}${values.scale ? "-scale" : ""}${values.budget ? "-budget" : ""}${quick ? "-quick" : ""}.json`);
  const durationSeconds = (finishedAt.getTime() - Date.parse(meta.startedAt)) / 1000;
  writeFileSync(file, `${JSON.stringify({ ...meta, finishedAt: finishedAt.toISOString(), durationSeconds, passes }, null, 2)}\n`);
  log(`\nResults written to ${path.relative(root, file)} (${durationSeconds.toFixed(0)} s in total)`);

  const failed = passes.flatMap((pass) => pass.checks.filter((entry) => entry.pass === false).map((entry) => `latency ${pass.mockLatencyMs} ms: ${entry.name}`));
  if (failed.length > 0) {
    log(`\n${failed.length} check(s) failed:\n  ${failed.join("\n  ")}`);
    return 1;
  }
  log("\nAll checks passed.");
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
