// With `--cpu-prof`, Keyport runs under V8's sampling profiler; this reads the profile it writes
// on exit and sums self time per function and per package, to show where its CPU goes.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";

/**
 * @typedef {{ id: number, hitCount?: number, callFrame: { functionName: string, url: string, lineNumber: number } }} ProfileNode
 */

/**
 * Top functions and packages by self time in the newest `.cpuprofile` of `directory`, or null
 * when there is none.
 * @param {string} directory
 * @param {number} [top]
 */
export function summarizeCpuProfile(directory, top = 15) {
  const files = readdirSync(directory).filter((name) => name.endsWith(".cpuprofile")).sort();
  const file = files.at(-1);
  if (file === undefined) return null;
  const profile = /** @type {{ nodes: ProfileNode[], startTime: number, endTime: number, samples: number[] }} */ (
    JSON.parse(readFileSync(path.join(directory, file), "utf8"))
  );
  // Shares of busy time: idle samples (waiting in the event loop) are left out.
  const isIdle = (node) => node.callFrame.functionName === "(idle)";
  const totalHits = profile.nodes.reduce((sum, node) => sum + (isIdle(node) ? 0 : (node.hitCount ?? 0)), 0);
  const byFunction = new Map();
  const byPackage = new Map();
  const add = (map, key, hits) => map.set(key, (map.get(key) ?? 0) + hits);
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || isIdle(node)) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = shortUrl(url);
    add(byFunction, `${functionName || "(anonymous)"} ${where}${url === "" ? "" : `:${lineNumber + 1}`}`, hits);
    add(byPackage, packageOf(url, functionName), hits);
  }
  const share = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, hits]) => ({ name, percent: totalHits > 0 ? (hits / totalHits) * 100 : 0 }));
  return { file: path.join(directory, file), functions: share(byFunction), packages: share(byPackage) };
}

/** @param {string} url */
function shortUrl(url) {
  if (url === "") return "";
  const nodeModules = url.lastIndexOf("node_modules/");
  if (nodeModules !== -1) return url.slice(nodeModules + "node_modules/".length);
  const dist = url.indexOf("/dist/");
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, "");
}

/**
 * @param {string} url
 * @param {string} functionName
 */
function packageOf(url, functionName) {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return "node (built-in)";
  const nodeModules = url.lastIndexOf("node_modules/");
  if (nodeModules !== -1) {
    const parts = url.slice(nodeModules + "node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  const dist = url.indexOf("/dist/");
  if (dist !== -1) return `keyport ${url.slice(dist + 1).split("/").slice(0, 2).join("/")}`;
  return url;
}

/**
 * @param {NonNullable<ReturnType<typeof summarizeCpuProfile>>} summary
 */
export function formatCpuProfile(summary) {
  const lines = ["", `Keyport CPU profile (share of busy time, self time; ${summary.file}):`, "  by package:"];
  for (const entry of summary.packages) lines.push(`    ${entry.percent.toFixed(1).padStart(5)}%  ${entry.name}`);
  lines.push("  by function:");
  for (const entry of summary.functions) lines.push(`    ${entry.percent.toFixed(1).padStart(5)}%  ${entry.name}`);
  return lines.join("\n");
}
