// Timed runs, with the CPU every process involved used during them: an open loop against every
// target at once, a closed loop against one target.
import { runClosedLoop } from "./closed-loop.mjs";
import { prepareOpenLoop } from "./open-loop.mjs";
import { readCpuSeconds, readMachineCpu } from "./processes.mjs";

/**
 * @typedef {object} Snapshot
 * @property {bigint} timeNs
 * @property {number} targetCpu CPU seconds of the process charged to the target
 * @property {number} mockCpu
 * @property {number} generatorCpu this process
 * @property {{ busyTicks: number, totalTicks: number, stealTicks: number }} machine
 */

/**
 * @param {{ targetPid: number, mockPid: number, ticksPerSecond: number }} pids
 * @returns {Snapshot}
 */
function snapshot({ targetPid, mockPid, ticksPerSecond }) {
  const self = process.cpuUsage();
  return {
    timeNs: process.hrtime.bigint(),
    targetCpu: cpuOrNaN(targetPid, ticksPerSecond),
    mockCpu: cpuOrNaN(mockPid, ticksPerSecond),
    generatorCpu: (self.user + self.system) / 1e6,
    machine: readMachineCpu(),
  };
}

/**
 * A process that died mid-run has no /proc entry; the run's CPU is then unknown (NaN) and the
 * pass stops right after the run with the process's log at hand.
 * @param {number} pid
 * @param {number} ticksPerSecond
 */
function cpuOrNaN(pid, ticksPerSecond) {
  try {
    return readCpuSeconds(pid, ticksPerSecond);
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU used between two snapshots. `backgroundCores` is what the rest of the machine (neither the
 * target, nor the mock, nor the generator) used, in cores: well above zero means another program
 * competed with the benchmark and the run is noisy.
 * @param {Snapshot} before
 * @param {Snapshot} after
 * @param {{ isDirect: boolean, ticksPerSecond: number }} options
 */
function cpuBetween(before, after, { isDirect, ticksPerSecond }) {
  const seconds = Number(after.timeNs - before.timeNs) / 1e9;
  const targetCpu = after.targetCpu - before.targetCpu;
  const mockCpu = after.mockCpu - before.mockCpu;
  const generatorCpu = after.generatorCpu - before.generatorCpu;
  const machineCpu = (after.machine.busyTicks - before.machine.busyTicks) / ticksPerSecond;
  const stolenCpu = (after.machine.stealTicks - before.machine.stealTicks) / ticksPerSecond;
  const ours = (isDirect ? targetCpu : targetCpu + mockCpu) + generatorCpu;
  return {
    targetCpuSeconds: targetCpu,
    mockCpuSeconds: mockCpu,
    generatorCores: seconds > 0 ? generatorCpu / seconds : 0,
    backgroundCores: seconds > 0 ? Math.max(0, machineCpu - ours) / seconds : 0,
    stealCores: seconds > 0 ? stolenCpu / seconds : 0,
  };
}

/**
 * @typedef {import("./cases.mjs").Target} Target
 * @typedef {import("./cases.mjs").BenchCase} BenchCase
 */

/**
 * Open loop at a fixed rate against every target at once, over the same seconds: each target gets
 * its own connections and `ratePerSecond`, each request due at a random point of its interval, so
 * the targets' requests interleave in no fixed order. The added latency is a difference of a few
 * tenths of a millisecond between targets, and the machine's state moves it by as much between
 * runs seconds apart; measured side by side, that drift hits every target alike.
 * @param {{ targets: { target: Target & { pid: number }, request: ReturnType<typeof import("./cases.mjs").requestFor> }[],
 *   mockPid: number, ticksPerSecond: number, benchCase: BenchCase, ratePerSecond: number, durationSeconds: number }} options
 */
export async function measureOpenLoops({ targets, mockPid, ticksPerSecond, benchCase, ratePerSecond, durationSeconds }) {
  const loops = await Promise.all(
    targets.map(({ target, request }) =>
      prepareOpenLoop({ origin: target.origin, request, ratePerSecond, durationSeconds, stream: benchCase.stream, streamEnd: benchCase.streamEnd }),
    ),
  );
  const before = targets.map(({ target }) => cpuOrNaN(target.pid, ticksPerSecond));
  const common = snapshot({ targetPid: mockPid, mockPid, ticksPerSecond });
  const startNs = process.hrtime.bigint() + 10_000_000n;
  const results = await Promise.all(loops.map((loop) => loop.run(startNs)));
  const after = targets.map(({ target }) => cpuOrNaN(target.pid, ticksPerSecond));
  const end = snapshot({ targetPid: mockPid, mockPid, ticksPerSecond });
  // The machine's busy time minus every process of the benchmark (the direct target's process is
  // the mock, counted once).
  const ownCpu = targets.reduce((sum, { target }, index) => sum + (target.pid === mockPid ? 0 : after[index] - before[index]), 0);
  const shared = cpuBetween(common, end, { isDirect: true, ticksPerSecond });
  const seconds = Number(end.timeNs - common.timeNs) / 1e9;
  const backgroundCores = seconds > 0 ? Math.max(0, shared.backgroundCores - ownCpu / seconds) : 0;
  const allRequests = results.reduce((sum, result) => sum + result.requests, 0);
  // The mock serves every target's requests; the direct target is charged its share of them.
  const cpuOf = (index) => {
    const used = after[index] - before[index];
    return targets[index].target.pid === mockPid ? (used * results[index].requests) / Math.max(1, allRequests) : used;
  };
  return results.map((result, index) =>
    withCpu(result, {
      targetCpuSeconds: cpuOf(index),
      mockCpuSeconds: shared.mockCpuSeconds,
      generatorCores: shared.generatorCores,
      backgroundCores,
      stealCores: shared.stealCores,
    }),
  );
}

/**
 * Closed loop (maximum throughput) against one target.
 * @param {{ target: Target & { pid: number }, mockPid: number, ticksPerSecond: number, benchCase: BenchCase,
 *   request: ReturnType<typeof import("./cases.mjs").requestFor>, connections: number, amount: number }} options
 */
export async function measureClosedLoop({ target, mockPid, ticksPerSecond, benchCase, request, connections, amount }) {
  const pids = { targetPid: target.pid, mockPid, ticksPerSecond };
  /** @type {Snapshot | undefined} */
  let before;
  /** @type {Snapshot | undefined} */
  let after;
  const result = await runClosedLoop({
    origin: target.origin,
    request,
    connections,
    amount,
    ...(benchCase.stream ? { streamEnd: benchCase.streamEnd } : {}),
    onStart: () => {
      before = snapshot(pids);
    },
    onFinish: () => {
      after = snapshot(pids);
    },
  });
  if (before === undefined || after === undefined) throw new Error("closed loop finished without CPU snapshots");
  return withCpu(result, cpuBetween(before, after, { isDirect: target.name === "direct", ticksPerSecond }));
}

/**
 * @template {{ requests: number }} T
 * @param {T} result
 * @param {ReturnType<typeof cpuBetween>} cpu
 */
function withCpu(result, cpu) {
  return {
    ...result,
    ...cpu,
    cpuSecondsPer1000: result.requests > 0 ? (cpu.targetCpuSeconds / result.requests) * 1000 : null,
  };
}
