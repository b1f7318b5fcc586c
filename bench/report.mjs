// Turns the runs of a pass into medians, added latency, Keyport / bare ratios and checks against
// the targets, and prints them as tables.
import { CASES, TARGET_NAMES } from "./cases.mjs";
import { difference, median, ratio } from "./stats.mjs";

/** The targets Keyport is held to, relative to the bare proxy measured in the same pass. */
export const LIMITS = {
  addedLatencyRatio: 1.5,
  addedFirstEventRatio: 1.5,
  /** Budget variant: what the budget check adds, as a share of Keyport's added p50 without it. */
  budgetShareOfAddedP50: 0.1,
  throughputRatio: 0.7,
  cpuPerRequestRatio: 1.5,
  peakRssBytes: 150 * 1024 * 1024,
};

/**
 * @param {Awaited<ReturnType<typeof import("./pass.mjs").runPass>>} pass
 */
export function aggregatePass(pass) {
  const rows = [];
  for (const mode of ["open", "closed"]) {
    for (const benchCase of CASES) {
      for (const target of pass.targetNames ?? TARGET_NAMES) {
        const runs = pass.runs.filter((run) => run.mode === mode && run.case === benchCase.id && run.target === target);
        if (runs.length === 0) continue;
        const direct = (repeat) => pass.runs.find((run) => run.mode === mode && run.case === benchCase.id && run.target === "direct" && run.repeat === repeat);
        // Added latency is taken per repeat against the direct run of the same repeat, then the median.
        const added = (pick) => (target === "direct" ? null : median(runs.map((run) => difference(pick(run), pick(direct(run.repeat))))));
        rows.push({
          mode,
          case: benchCase.id,
          stream: benchCase.stream,
          target,
          repeats: runs.length,
          requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
          latencyMs: {
            p50: median(runs.map((run) => run.latencyMs.p50)),
            p90: median(runs.map((run) => run.latencyMs.p90)),
            p99: median(runs.map((run) => run.latencyMs.p99)),
          },
          firstEventMs: benchCase.stream && mode === "open"
            ? { p50: median(runs.map((run) => run.firstEventMs?.p50)), p99: median(runs.map((run) => run.firstEventMs?.p99)) }
            : null,
          addedMs: {
            p50: added((run) => run?.latencyMs.p50),
            p99: added((run) => run?.latencyMs.p99),
            firstEventP50: benchCase.stream && mode === "open" ? added((run) => run?.firstEventMs?.p50) : null,
          },
          cpuSecondsPer1000: median(runs.map((run) => run.cpuSecondsPer1000)),
          errors: runs.reduce((sum, run) => sum + run.errors, 0),
          errorKinds: mergeCounts(runs.map((run) => run.errorKinds)),
          generatorLagP99Ms: mode === "open" ? median(runs.map((run) => run.lagMs?.p99)) : null,
          generatorCores: median(runs.map((run) => run.generatorCores)),
          backgroundCoresMax: Math.max(...runs.map((run) => run.backgroundCores)),
          stealCoresMax: Math.max(...runs.map((run) => run.stealCores ?? 0)),
        });
      }
    }
  }

  const find = (mode, caseId, target) => rows.find((row) => row.mode === mode && row.case === caseId && row.target === target);
  /**
   * Throughput and CPU ratios are taken per repeat (Keyport against the bare run just before it,
   * so a machine that speeds up or slows down between repeats cancels out), then the median.
   */
  const perRepeatRatio = (mode, caseId, pick) =>
    median(
      pass.runs
        .filter((run) => run.mode === mode && run.case === caseId && run.target === "keyport")
        .map((run) => ratio(pick(run), pick(pass.runs.find((other) => other.mode === mode && other.case === caseId && other.target === "bare" && other.repeat === run.repeat)))),
    );
  const ratios = CASES.map((benchCase) => {
    const open = (target) => find("open", benchCase.id, target);
    return {
      case: benchCase.id,
      stream: benchCase.stream,
      throughput: perRepeatRatio("closed", benchCase.id, (run) => run?.requestsPerSecond),
      // Added latencies are already per-repeat differences; a ratio of two small, noisy numbers
      // per repeat would be unstable, so this is the ratio of their medians.
      addedP50: ratio(open("keyport")?.addedMs.p50, open("bare")?.addedMs.p50),
      addedFirstEventP50: benchCase.stream ? ratio(open("keyport")?.addedMs.firstEventP50, open("bare")?.addedMs.firstEventP50) : null,
      cpuPerRequestOpen: perRepeatRatio("open", benchCase.id, (run) => run?.cpuSecondsPer1000),
      cpuPerRequestClosed: perRepeatRatio("closed", benchCase.id, (run) => run?.cpuSecondsPer1000),
    };
  });

  const totalErrors = rows.reduce((sum, row) => sum + row.errors, 0) + pass.warmUpErrors.reduce((sum, entry) => sum + entry.errors, 0);
  const checks = [];
  const check = (name, value, limit, passes) => checks.push({ name, value, limit, pass: value === null ? null : passes });
  for (const entry of ratios) {
    if (!entry.stream) check(`added p50 latency ${entry.case} (Keyport / bare)`, entry.addedP50, `≤ ${LIMITS.addedLatencyRatio}`, entry.addedP50 !== null && entry.addedP50 <= LIMITS.addedLatencyRatio);
    if (entry.stream) check(`added time to first event ${entry.case} (Keyport / bare)`, entry.addedFirstEventP50, `≤ ${LIMITS.addedFirstEventRatio}`, entry.addedFirstEventP50 !== null && entry.addedFirstEventP50 <= LIMITS.addedFirstEventRatio);
    if (entry.throughput !== null) check(`throughput ${entry.case} (Keyport / bare)`, entry.throughput, `≥ ${LIMITS.throughputRatio}`, entry.throughput >= LIMITS.throughputRatio);
    const cpu = entry.cpuPerRequestClosed ?? entry.cpuPerRequestOpen;
    if (!entry.stream) check(`CPU per request ${entry.case} (Keyport / bare, ${entry.cpuPerRequestClosed === null ? "open" : "closed"} loop)`, cpu, `≤ ${LIMITS.cpuPerRequestRatio}`, cpu !== null && cpu <= LIMITS.cpuPerRequestRatio);
  }
  const peak = pass.memory.keyport.peakRssBytes;
  check("Keyport peak RSS (MB)", peak / 1024 / 1024, `≤ ${LIMITS.peakRssBytes / 1024 / 1024}`, peak <= LIMITS.peakRssBytes);
  check("errors, all targets and runs", totalErrors, "= 0", totalErrors === 0);
  /** Every gateway request a Keyport answered has its usage record, and it stopped cleanly. */
  const checkStore = (label, records, traffic, exitCode) => {
    check(
      `${label}usage records (2xx) = Keyport 2xx responses`,
      records.status2xx,
      `= ${traffic.status2xx}`,
      records.status2xx === traffic.status2xx && records.total === traffic.requests,
    );
    check(`${label}Keyport exit code after SIGTERM`, exitCode, "= 0", exitCode === 0);
  };
  checkStore("", pass.usageRecords, pass.keyportTraffic, pass.keyportExitCode);
  check("2xx usage records without token counts", pass.usageRecords.withoutTokens, "= 0", pass.usageRecords.withoutTokens === 0);
  const seeded = pass.seededStore;
  if (seeded !== null && seeded !== undefined) checkStore(`${seeded.target ?? "seeded"} store: `, seeded.usageRecords, seeded.traffic, seeded.exitCode);
  // Budget variant: the same calls through a Keyport whose owner has a budget, side by side.
  const budget = (pass.targetNames ?? []).includes("budget")
    ? CASES.map((benchCase) => {
        const plain = find("open", benchCase.id, "keyport")?.addedMs.p50;
        const budgeted = find("open", benchCase.id, "budget")?.addedMs.p50;
        const costMs = difference(budgeted, plain);
        return {
          case: benchCase.id,
          stream: benchCase.stream,
          addedP50Ms: plain ?? null,
          budgetAddedP50Ms: budgeted ?? null,
          costMs,
          share: costMs === null || plain === null || plain === undefined || plain <= 0 ? null : costMs / plain,
          cpuRatio: ratio(find("closed", benchCase.id, "budget")?.cpuSecondsPer1000 ?? find("open", benchCase.id, "budget")?.cpuSecondsPer1000, find("closed", benchCase.id, "keyport")?.cpuSecondsPer1000 ?? find("open", benchCase.id, "keyport")?.cpuSecondsPer1000),
        };
      })
    : null;
  for (const entry of budget ?? []) {
    if (!entry.stream) {
      check(
        `budget check ${entry.case} (its added p50 over Keyport's added p50)`,
        entry.share,
        `≤ ${LIMITS.budgetShareOfAddedP50}`,
        entry.share !== null && entry.share <= LIMITS.budgetShareOfAddedP50,
      );
    }
  }
  return { rows, ratios, checks, totalErrors, budget };
}

/** @param {Record<string, number>[]} counts */
function mergeCounts(counts) {
  /** @type {Record<string, number>} */
  const merged = {};
  for (const entry of counts) for (const [name, count] of Object.entries(entry)) merged[name] = (merged[name] ?? 0) + count;
  return merged;
}

const cell = (value, digits = 2, width = 8) => (value === null || value === undefined ? "-" : typeof value === "number" ? value.toFixed(digits) : String(value)).padStart(width);

/**
 * The pass as text tables.
 * @param {Awaited<ReturnType<typeof import("./pass.mjs").runPass>>} pass
 * @param {ReturnType<typeof aggregatePass>} summary
 */
export function formatPass(pass, summary) {
  const { plan } = pass;
  const lines = [];
  lines.push("", `=== mock latency ${plan.mockLatencyMs} ms: ${plan.repeats} repeat(s), medians ===`, "");
  lines.push(`Open loop, ${plan.ratePerSecond} req/s for ${plan.openSeconds} s, latency from the time each request was due (ms):`);
  lines.push(
    `${"case".padEnd(26)} ${"target".padEnd(8)}${cell("req/s")}${cell("p50")}${cell("p90")}${cell("p99")}${cell("TTFE50")}${cell("TTFE99")}${cell("+p50")}${cell("+p99")}${cell("+TTFE50")}${cell("CPUs/1k", 0, 9)}${cell("errors")}`,
  );
  for (const row of summary.rows.filter((entry) => entry.mode === "open")) {
    lines.push(
      `${row.case.padEnd(26)} ${row.target.padEnd(8)}${cell(row.requestsPerSecond, 1)}${cell(row.latencyMs.p50)}${cell(row.latencyMs.p90)}${cell(row.latencyMs.p99)}` +
        `${cell(row.firstEventMs?.p50)}${cell(row.firstEventMs?.p99)}${cell(row.addedMs.p50)}${cell(row.addedMs.p99)}${cell(row.addedMs.firstEventP50)}${cell(row.cpuSecondsPer1000, 3, 9)}${cell(row.errors, 0)}`,
    );
  }
  const closedRows = summary.rows.filter((entry) => entry.mode === "closed");
  if (closedRows.length > 0) {
    lines.push("", `Closed loop, ${plan.closedConnections} connections, about ${plan.closedSeconds} s (autocannon; latency in whole ms):`);
    lines.push(`${"case".padEnd(26)} ${"target".padEnd(8)}${cell("req/s", 0, 9)}${cell("p50")}${cell("p99")}${cell("CPUs/1k", 0, 9)}${cell("errors")}`);
    for (const row of closedRows) {
      lines.push(`${row.case.padEnd(26)} ${row.target.padEnd(8)}${cell(row.requestsPerSecond, 0, 9)}${cell(row.latencyMs.p50, 0)}${cell(row.latencyMs.p99, 0)}${cell(row.cpuSecondsPer1000, 3, 9)}${cell(row.errors, 0)}`);
    }
  }
  lines.push("", "Keyport / bare:");
  lines.push(`${"case".padEnd(26)}${cell("thruput", 2, 9)}${cell("+p50", 2, 9)}${cell("+TTFE50", 2, 9)}${cell("CPU open", 2, 10)}${cell("CPU closed", 2, 11)}`);
  for (const entry of summary.ratios) {
    lines.push(`${entry.case.padEnd(26)}${cell(entry.throughput, 2, 9)}${cell(entry.addedP50, 2, 9)}${cell(entry.addedFirstEventP50, 2, 9)}${cell(entry.cpuPerRequestOpen, 2, 10)}${cell(entry.cpuPerRequestClosed, 2, 11)}`);
  }
  const mb = (bytes) => (bytes / 1024 / 1024).toFixed(1);
  lines.push(
    "",
    `Peak RSS: Keyport ${mb(pass.memory.keyport.peakRssBytes)} MB (RSS ${mb(pass.memory.keyportAtStart.rssBytes)} MB after start, ${mb(pass.memory.keyportAfterWarmUp.rssBytes)} MB after warm-up, ${mb(pass.memory.keyport.rssBytes)} MB at the end), bare ${mb(pass.memory.bare.peakRssBytes)} MB, mock ${mb(pass.memory.mock.peakRssBytes)} MB`,
    `Usage records: ${pass.usageRecords.total} (2xx ${pass.usageRecords.status2xx}, other ${pass.usageRecords.non2xx}; ${JSON.stringify(pass.usageRecords.byStatus)}) for ${pass.keyportTraffic.requests} gateway requests, ${pass.keyportTraffic.status2xx} answered 2xx`,
    `Keyport log: ${pass.keyportLog.lines} lines, ${pass.keyportLog.warnOrWorse} at warn or above${pass.keyportLog.samples.length > 0 ? `: ${pass.keyportLog.samples.join(" | ")}` : ""}`,
  );
  if (summary.budget !== null && summary.budget !== undefined) {
    lines.push("", "Budget check (target budget: the owner has a monthly budget; keyport: none):");
    lines.push(`${"case".padEnd(26)}${cell("+p50", 3, 9)}${cell("budget+p50", 3, 11)}${cell("cost ms", 3, 9)}${cell("share", 2, 8)}${cell("CPU ratio", 2, 10)}`);
    for (const entry of summary.budget) {
      lines.push(`${entry.case.padEnd(26)}${cell(entry.addedP50Ms, 3, 9)}${cell(entry.budgetAddedP50Ms, 3, 11)}${cell(entry.costMs, 3, 9)}${cell(entry.share, 2, 8)}${cell(entry.cpuRatio, 2, 10)}`);
    }
  }
  const seeded = pass.seededStore;
  if (seeded !== null && seeded !== undefined) {
    const second = seeded.target ?? "seeded";
    lines.push(
      `${second === "seeded" ? "Seeded store" : "Budget owner's store"} (target "${second}"): peak RSS ${mb(pass.memory[second].peakRssBytes)} MB; usage records ${seeded.usageRecords.total} (2xx ${seeded.usageRecords.status2xx}) for ${seeded.traffic.requests} gateway requests, ${seeded.traffic.status2xx} answered 2xx; log ${seeded.log.lines} lines, ${seeded.log.warnOrWorse} at warn or above`,
    );
  }
  if (pass.gc !== null && pass.gc !== undefined) {
    const gcLine = (name, gc) => {
      const every = gc.scavenges > 0 ? (gc.requests / gc.scavenges).toFixed(0) : "-";
      const eachUs = gc.scavenges > 0 ? ((gc.scavengePauseMs / gc.scavenges) * 1000).toFixed(0) : "-";
      const pauseUsPerRequest = gc.requests > 0 ? (((gc.scavengePauseMs + gc.fullPauseMs) / gc.requests) * 1000).toFixed(1) : "-";
      return `${name} ${gc.scavenges} scavenges (one per ${every} requests, ${eachUs} µs each) and ${gc.fullCollections} full collections, main-thread pause ${pauseUsPerRequest} µs per request`;
    };
    lines.push(`GC over the pass (warm-up included): ${gcLine("bare", pass.gc.bare)}; ${gcLine("Keyport", pass.gc.keyport)}`);
  }
  if (pass.quietWaitSeconds > 0.5) lines.push(`Waited ${pass.quietWaitSeconds.toFixed(1)} s in all for other programs to go quiet before runs.`);
  const noisy = summary.rows.filter((row) => row.backgroundCoresMax > 0.25);
  if (noisy.length > 0) {
    const steal = Math.max(...noisy.map((row) => row.stealCoresMax));
    lines.push(
      `Warning: other programs${steal > 0.05 ? " (or the hypervisor: up to " + steal.toFixed(2) + " cores stolen)" : ""} used up to ${Math.max(...noisy.map((row) => row.backgroundCoresMax)).toFixed(2)} cores during ${noisy.length} of the measured rows; numbers are noisy.`,
    );
  }
  const errorRows = summary.rows.filter((row) => row.errors > 0);
  for (const row of errorRows) lines.push(`Errors: ${row.mode} ${row.case} ${row.target}: ${JSON.stringify(row.errorKinds)}`);
  for (const entry of pass.warmUpErrors) lines.push(`Errors in warm-up: ${entry.case} ${entry.target}: ${JSON.stringify(entry.errorKinds)}`);
  lines.push("", "Checks:");
  for (const entry of summary.checks) {
    const verdict = entry.pass === null ? "n/a " : entry.pass ? "PASS" : "FAIL";
    lines.push(`  [${verdict}] ${entry.name}: ${cell(entry.value, Number.isInteger(entry.value) ? 0 : 2, 0)} (${entry.limit})`);
  }
  return lines.join("\n");
}
