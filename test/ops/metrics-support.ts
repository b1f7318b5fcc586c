import { expect } from "vitest";
import type { TestKeyport } from "../support/harness.js";

/** One sample of the exposition text: `name{labels} value`. */
export type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parses Prometheus' text format (what prom-client writes: no timestamps, quoted label values). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ""] = (pair[2] ?? "").replace(/\\(.)/g, "$1");
    samples.push({ name: match[1] ?? "", labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`; 0 when there is none. */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  expect(found.length, `${name} ${JSON.stringify(labels)}: ${JSON.stringify(found)}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

/** The sum of every sample of `name` whose labels include `labels`. */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** `GET /metrics` with the operator token. */
export async function scrape(keyport: TestKeyport, adminToken: string): Promise<Sample[]> {
  const response = await keyport.request("GET", "/metrics", { headers: { authorization: `Bearer ${adminToken}` } });
  expect(response.status, response.text).toBe(200);
  return parseExposition(response.text);
}

/**
 * Scrapes until `ready` holds: a call's metrics are counted right after its answer went out, which
 * the client may see a moment before. Fails after a bounded number of tries.
 */
export async function scrapeUntil(keyport: TestKeyport, adminToken: string, ready: (samples: Sample[]) => boolean): Promise<Sample[]> {
  for (let attempt = 0; ; attempt += 1) {
    const samples = await scrape(keyport, adminToken);
    if (ready(samples) || attempt >= 100) return samples;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
