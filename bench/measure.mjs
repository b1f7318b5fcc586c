// One timed run against one target, with the CPU every process involved used during it.
import { runClosedLoop } from "./closed-loop.mjs";
import { runOpenLoop } from "./open-loop.mjs";
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
 * Open loop at a fixed rate against one target.
 * @param {{ target: Target & { pid: number }, mockPid: number, ticksPerSecond: number, benchCase: BenchCase,
 *   request: ReturnType<typeof import("./cases.mjs").requestFor>, ratePerSecond: number, durationSeconds: number }} options
 */
export async function measureOpenLoop({ target, mockPid, ticksPerSecond, benchCase, request, ratePerSecond, durationSeconds }) {
  const pids = { targetPid: target.pid, mockPid, ticksPerSecond };
  /** @type {Snapshot | undefined} */
  let before;
  /** @type {Snapshot | undefined} */
  let after;
  const result = await runOpenLoop({
    origin: target.origin,
    request,
    ratePerSecond,
    durationSeconds,
    stream: benchCase.stream,
    streamEnd: benchCase.streamEnd,
    onStart: () => {
      before = snapshot(pids);
    },
    onFinish: () => {
      after = snapshot(pids);
    },
  });
  if (before === undefined || after === undefined) throw new Error("open loop finished without CPU snapshots");
  return withCpu(result, cpuBetween(before, after, { isDirect: target.name === "direct", ticksPerSecond }));
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
