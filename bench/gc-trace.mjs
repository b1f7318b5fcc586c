// With `--gc-trace`, the bare proxy and Keyport run with V8's `--trace-gc`, which prints one line
// per collection to their output; this sums those lines, to show how much of a call's CPU is
// garbage collection and why (how many young-generation collections per request, and how long).
import { readFileSync } from "node:fs";

export const GC_TRACE_FLAGS = ["--trace-gc"];

// `[1234:0x5d8e0]     7791 ms: Scavenge 42.5 (52.2) -> 39.5 (52.2) MB, 0.85 / 0.04 ms  (…)`
// `… Mark-Compact 35.0 (41.7) -> 30.3 (42.9) MB, 3.46 / 0.08 ms  (+ 9.6 ms in 84 steps since start of marking, …)`
const TRACE_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: /;
const COLLECTION = /ms: (Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Compact|Minor Mark-Sweep)\b.*? MB, ([\d.]+) \/ [\d.]+ ms(?:\s+\(\+ ([\d.]+) ms in \d+ steps)?/;

/** @param {string} line */
export function isGcTraceLine(line) {
  return TRACE_LINE.test(line);
}

/**
 * Young-generation collections (scavenges) and full ones, with their main-thread pause in ms
 * (for full collections including the incremental marking steps before the pause). Background
 * GC threads' time is not in these lines; it is in the process's CPU time.
 * @param {string} file a log the process wrote with `--trace-gc`
 */
export function summarizeGcTrace(file) {
  const summary = { scavenges: 0, scavengePauseMs: 0, fullCollections: 0, fullPauseMs: 0 };
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return summary;
  }
  for (const line of text.split("\n")) {
    const match = COLLECTION.exec(line);
    if (match === null) continue;
    const pauseMs = Number(match[2]) + Number(match[3] ?? 0);
    if (match[1] === "Scavenge") {
      summary.scavenges += 1;
      summary.scavengePauseMs += pauseMs;
    } else {
      summary.fullCollections += 1;
      summary.fullPauseMs += pauseMs;
    }
  }
  return summary;
}
