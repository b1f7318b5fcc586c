// One pass: a mock provider with a given latency, the bare proxy and Keyport, each its own
// process; warm-up, then every run with direct, bare and Keyport interleaved, repeated. The
// scale check's pass adds a second Keyport on a seeded store, interleaved with the rest.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { BUDGET_TARGET_NAMES, CASES, SCALE_TARGET_NAMES, TARGET_NAMES, requestFor } from "./cases.mjs";
import { runClosedLoop } from "./closed-loop.mjs";
import { createOwnerKeys, keyportEnv, keyportNodeOptions, newSecrets, prepareDatabase, readUsageRecords, setOwnerBudget, signBenchToken } from "./keyport-setup.mjs";
import { GC_TRACE_FLAGS, isGcTraceLine, summarizeGcTrace } from "./gc-trace.mjs";
import { measureClosedLoop, measureOpenLoops } from "./measure.mjs";
import { summarizeCpuProfile } from "./profile.mjs";
import { seedScaleDatabase, timeUsageReport } from "./scale.mjs";
import { freePort, readMemory, startChild, stopChild, waitForQuiet, waitUntilAnswering } from "./processes.mjs";

/**
 * @typedef {object} PassPlan
 * @property {number} mockLatencyMs
 * @property {number} repeats
 * @property {number} ratePerSecond open-loop rate
 * @property {number} openSeconds
 * @property {number} closedSeconds closed-loop runs last about this long (0: no closed loop)
 * @property {number} closedConnections
 * @property {boolean} closedStreams also run the streamed cases closed loop
 * @property {number} warmUpRequests per target and case
 * @property {number} quietWaitSeconds longest total wait, per pass, for other programs to go quiet before runs
 * @property {boolean} scale also run Keyport on a store seeded with 100,000 owners' keys and 5 million
 *   usage records (target `seeded`), interleaved with the others
 * @property {boolean} [budget] also run a second Keyport on an empty store whose owner has a monthly
 *   budget (target `budget`), interleaved with the others: what the budget check costs
 * @property {boolean} cpuProfile run Keyport under V8's sampling profiler (slower; for finding where its CPU goes)
 * @property {boolean} gcTrace run bare and Keyport with V8's `--trace-gc` and sum their collections
 * @property {Record<string, string>} keyportEnv settings added to Keyport's environment (`--keyport-env`)
 */

/** Between runs: sample the machine this long, and call it quiet below this many busy cores. */
const QUIET_SAMPLE_MS = 200;
const QUIET_THRESHOLD_CORES = 0.25;
const QUIET_MAX_WAIT_PER_RUN_MS = 5_000;

/**
 * @param {PassPlan} plan
 * @param {{ root: string, ticksPerSecond: number, log: (line: string) => void, keepFiles: boolean }} context
 */
export async function runPass(plan, { root, ticksPerSecond, log, keepFiles }) {
  const workDir = mkdtempSync(path.join(tmpdir(), "keyport-bench-"));
  const dbPath = path.join(workDir, "bench.db");
  /** @type {import("./processes.mjs").Child[]} */
  const children = [];
  const start = (name, args, env) => {
    const child = startChild({ name, args, env, cwd: root, logFile: path.join(workDir, `${name}.log`) });
    children.push(child);
    return child;
  };
  const baseEnv = { NODE_ENV: "production" };
  let isComplete = false;
  /** @param {import("./processes.mjs").Child} child */
  const exitedError = (child) =>
    new Error(`${child.name} exited during the pass; the end of its output (${child.logFile}):\n${tailOf(child.logFile, 15)}`);
  /** Stops the pass with the child's log at hand when one of the processes died. */
  const assertRunning = () => {
    for (const child of children) {
      if (!child.isRunning()) throw exitedError(child);
    }
  };
  /** @param {import("./processes.mjs").Child} child */
  const memoryOf = (child) => {
    try {
      return readMemory(child.pid);
    } catch {
      throw exitedError(child);
    }
  };
  try {
    const mockPort = await freePort();
    const mockUrl = `http://127.0.0.1:${mockPort}`;
    const mockArgs = ["bin/keyport.js", "mock-provider", "--port", String(mockPort), "--accept-unknown-keys", "--latency-ms", String(plan.mockLatencyMs)];
    const mock = start("mock", mockArgs, baseEnv);
    await waitUntilAnswering(mock, `${mockUrl}/`);

    const barePort = await freePort();
    const gcFlags = plan.gcTrace ? GC_TRACE_FLAGS : [];
    const bare = start("bare", [...gcFlags, "bench/bare-proxy.mjs", "--port", String(barePort), "--upstream", mockUrl], baseEnv);
    await waitUntilAnswering(bare, `http://127.0.0.1:${barePort}/`);

    const secrets = newSecrets();
    const keyportPort = await freePort();
    const env = { ...keyportEnv({ port: keyportPort, dataDir: workDir, dbPath, mockUrl, secrets }), ...plan.keyportEnv };
    const emptyStore = await prepareDatabase({ dbPath, env, scale: false });
    // The seeded store is filled before either Keyport starts: seeding takes minutes of CPU,
    // which must not fall between one Keyport's runs and the other's.
    // The second Keyport: on a seeded store (scale check), or with an owner budget (budget variant).
    const secondName = plan.scale ? "seeded" : plan.budget === true ? "budget" : null;
    const seededDbPath = path.join(workDir, secondName ?? "seeded", "bench.db");
    const seededPort = secondName === null ? 0 : await freePort();
    const seededEnv = keyportEnv({ port: seededPort, dataDir: path.dirname(seededDbPath), dbPath: seededDbPath, mockUrl, secrets });
    if (secondName !== null) mkdirSync(path.dirname(seededDbPath), { recursive: true });
    const seeded = plan.scale ? seedScaleDatabase({ root, dbPath: seededDbPath, env: seededEnv, log }) : emptyStore;
    const profilerFlags = plan.cpuProfile ? ["--cpu-prof", `--cpu-prof-dir=${workDir}`] : [];
    const keyport = start("keyport", [...keyportNodeOptions(root), ...profilerFlags, ...gcFlags, "bin/keyport.js", "serve"], env);
    const keyportUrl = `http://127.0.0.1:${keyportPort}`;
    await waitUntilAnswering(keyport, `${keyportUrl}/healthz`);
    const token = await signBenchToken(secrets.jwtSecret);
    await createOwnerKeys(keyportUrl, token, secrets);
    const seededKeyport = secondName === null ? null : start(secondName, [...keyportNodeOptions(root), "bin/keyport.js", "serve"], seededEnv);
    const seededUrl = `http://127.0.0.1:${seededPort}`;
    if (seededKeyport !== null) {
      await waitUntilAnswering(seededKeyport, `${seededUrl}/healthz`);
      await createOwnerKeys(seededUrl, token, secrets);
      if (secondName === "budget") await setOwnerBudget(seededUrl, token);
    }
    // Before any gateway traffic: what Keyport holds just for being up.
    const keyportMemoryAtStart = memoryOf(keyport);
    const credentials = { openaiKey: secrets.openaiKey, anthropicKey: secrets.anthropicKey, token };

    const targets = {
      direct: { name: "direct", origin: mockUrl, pid: mock.pid },
      bare: { name: "bare", origin: `http://127.0.0.1:${barePort}`, pid: bare.pid },
      keyport: { name: "keyport", origin: keyportUrl, pid: keyport.pid },
      ...(seededKeyport === null || secondName === null ? {} : { [secondName]: { name: secondName, origin: seededUrl, pid: seededKeyport.pid } }),
    };
    const targetNames = secondName === "seeded" ? SCALE_TARGET_NAMES : secondName === "budget" ? BUDGET_TARGET_NAMES : TARGET_NAMES;
    // Every response each target sent (warm-up included): Keyport's to compare with the usage
    // records it wrote, bare's and Keyport's to put their garbage collections per request.
    const traffic = Object.fromEntries(targetNames.map((name) => [name, { requests: 0, status2xx: 0 }]));
    const keyportTraffic = traffic.keyport;
    const countTraffic = (targetName, result) => {
      traffic[targetName].requests += result.requests;
      traffic[targetName].status2xx += result.status2xx;
    };

    log(`  warm-up (${plan.warmUpRequests} requests per target and case)`);
    /** @type {Record<string, number>} latest closed-loop rate per target and case, to size the next run */
    const rateEstimate = {};
    const warmUpErrors = [];
    for (const benchCase of CASES) {
      for (const targetName of targetNames) {
        const target = targets[targetName];
        const result = await runClosedLoop({
          origin: target.origin,
          request: requestFor(benchCase, targetName, credentials),
          connections: plan.closedConnections,
          amount: plan.warmUpRequests,
          ...(benchCase.stream ? { streamEnd: benchCase.streamEnd } : {}),
        });
        countTraffic(targetName, result);
        rateEstimate[`${targetName}/${benchCase.id}`] = result.requestsPerSecond;
        if (result.errors > 0) warmUpErrors.push({ target: targetName, case: benchCase.id, errors: result.errors, errorKinds: result.errorKinds });
      }
    }

    let quietBudgetMs = plan.quietWaitSeconds * 1000;
    // A short pause between runs; on a busy machine, also a wait for the others to calm down.
    const settle = async () => {
      const quiet = await waitForQuiet({
        ticksPerSecond,
        thresholdCores: QUIET_THRESHOLD_CORES,
        sampleMs: QUIET_SAMPLE_MS,
        maxWaitMs: Math.min(QUIET_MAX_WAIT_PER_RUN_MS, quietBudgetMs + QUIET_SAMPLE_MS),
      });
      // The first sample is the ordinary pause; only waiting beyond it uses the budget.
      quietBudgetMs = Math.max(0, quietBudgetMs - Math.max(0, quiet.waitedMs - QUIET_SAMPLE_MS));
      return quiet;
    };

    const keyportMemoryAfterWarmUp = memoryOf(keyport);
    const closedCases = plan.closedSeconds > 0 ? CASES.filter((benchCase) => plan.closedStreams || !benchCase.stream) : [];
    const runs = [];
    for (let repeat = 1; repeat <= plan.repeats; repeat += 1) {
      for (const benchCase of CASES) {
        assertRunning();
        const quiet = await settle();
        // Every target over the same seconds, their requests interleaved (see measureOpenLoops).
        const results = await measureOpenLoops({
          targets: targetNames.map((targetName) => ({ target: targets[targetName], request: requestFor(benchCase, targetName, credentials) })),
          mockPid: mock.pid,
          ticksPerSecond,
          benchCase,
          ratePerSecond: plan.ratePerSecond,
          durationSeconds: plan.openSeconds,
        });
        targetNames.forEach((targetName, index) => {
          const result = results[index];
          countTraffic(targetName, result);
          runs.push({ mode: "open", repeat, case: benchCase.id, target: targetName, quiet, keyportMemory: memoryOf(keyport), ...result });
          log(`  #${repeat} open   ${benchCase.id.padEnd(26)} ${targetName.padEnd(8)} ${describe(result, benchCase.stream)}`);
        });
      }
      for (const benchCase of closedCases) {
        for (const targetName of targetNames) {
          assertRunning();
          const quiet = await settle();
          const estimated = rateEstimate[`${targetName}/${benchCase.id}`] ?? 1000;
          const amount = Math.max(plan.closedConnections * 4, Math.round((estimated * plan.closedSeconds) / plan.closedConnections) * plan.closedConnections);
          const result = await measureClosedLoop({
            target: targets[targetName],
            mockPid: mock.pid,
            ticksPerSecond,
            benchCase,
            request: requestFor(benchCase, targetName, credentials),
            connections: plan.closedConnections,
            amount,
          });
          countTraffic(targetName, result);
          rateEstimate[`${targetName}/${benchCase.id}`] = result.requestsPerSecond;
          runs.push({ mode: "closed", repeat, case: benchCase.id, target: targetName, quiet, keyportMemory: memoryOf(keyport), ...result });
          log(`  #${repeat} closed ${benchCase.id.padEnd(26)} ${targetName.padEnd(8)} ${result.requestsPerSecond.toFixed(0)} req/s, errors ${result.errors}`);
        }
      }
    }

    assertRunning();
    const usageReport = secondName === "seeded" ? await timeUsageReport(seededUrl, token) : null;
    const memory = {
      keyportAtStart: keyportMemoryAtStart,
      keyportAfterWarmUp: keyportMemoryAfterWarmUp,
      keyport: memoryOf(keyport),
      bare: memoryOf(bare),
      mock: memoryOf(mock),
      ...(seededKeyport === null || secondName === null ? {} : { [secondName]: memoryOf(seededKeyport) }),
    };
    // SIGTERM drains the server and flushes queued usage records before Keyport exits.
    const keyportExitCode = await stopChild(keyport);
    const usageRecords = readUsageRecords(dbPath);
    const keyportLog = scanLog(keyport.logFile);
    const seededStore =
      seededKeyport === null
        ? null
        : { target: secondName, exitCode: await stopChild(seededKeyport), usageRecords: readUsageRecords(seededDbPath), traffic: traffic[secondName ?? "seeded"], log: scanLog(seededKeyport.logFile) };
    await stopChild(bare);
    const gc = plan.gcTrace
      ? {
          bare: { requests: traffic.bare.requests, ...summarizeGcTrace(bare.logFile) },
          keyport: { requests: traffic.keyport.requests, ...summarizeGcTrace(keyport.logFile) },
        }
      : null;
    const cpuProfile = plan.cpuProfile ? summarizeCpuProfile(workDir) : null;
    isComplete = true;
    return {
      mockLatencyMs: plan.mockLatencyMs,
      plan,
      targetNames,
      runs,
      warmUpErrors,
      memory,
      keyportExitCode,
      seeded,
      usageReport,
      keyportTraffic,
      usageRecords,
      keyportLog,
      cpuProfile,
      gc,
      seededStore,
      quietWaitSeconds: (plan.quietWaitSeconds * 1000 - quietBudgetMs) / 1000,
      workDir: keepFiles || plan.cpuProfile ? workDir : undefined,
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    // A failed pass keeps its logs and database for a look.
    if (!keepFiles && !plan.cpuProfile && isComplete) rmSync(workDir, { recursive: true, force: true });
    if (!isComplete) log(`Pass failed; logs and database kept in ${workDir}`);
  }
}

/** A one-line progress summary of an open-loop run. */
function describe(result, isStream) {
  const p50 = result.latencyMs.p50 === null ? "-" : result.latencyMs.p50.toFixed(2);
  const ttfe = isStream && result.firstEventMs?.p50 != null ? `, TTFE p50 ${result.firstEventMs.p50.toFixed(2)} ms` : "";
  return `p50 ${p50} ms${ttfe}, errors ${result.errors}`;
}

/**
 * Keyport's log lines at warn level or above (pino JSON: level ≥ 40), counted, with the first
 * few messages for the report.
 * @param {string} file
 */
function scanLog(file) {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { lines: 0, warnOrWorse: 0, samples: [] };
  }
  // `--gc-trace` puts V8's collection lines in the same output; they are not log lines.
  const lines = text.split("\n").filter((line) => line !== "" && !isGcTraceLine(line));
  const samples = [];
  let warnOrWorse = 0;
  for (const line of lines) {
    let level = 0;
    let message = line;
    try {
      const parsed = JSON.parse(line);
      level = typeof parsed.level === "number" ? parsed.level : 0;
      message = String(parsed.msg ?? "");
    } catch {
      level = 50; // Not a log line: something printed to stdout/stderr directly.
    }
    if (level >= 40) {
      warnOrWorse += 1;
      if (samples.length < 5) samples.push(message.slice(0, 200));
    }
  }
  return { lines: lines.length, warnOrWorse, samples };
}

/**
 * The last lines of a log file, for an error message.
 * @param {string} file
 * @param {number} count
 */
function tailOf(file, count) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-count).join("\n");
  } catch {
    return "(no output)";
  }
}
