import { Counter, Histogram, type Metric, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { LabelledCounter, LabelledHistogram } from "./label-cells.js";

const BUCKETS = [0.0005, 0.001, 0.0025, 1];
const OBSERVED: [string, number][] = [
  ["openai", 0.0004],
  ["openai", 0.0005],
  ["openai", 0.002],
  ["anthropic", 5],
  ["openai", 0.9],
];

describe("label cells", () => {
  it("render exactly what prom-client's own counter and histogram render for the same events", async () => {
    const theirs = new Registry();
    const counter = new Counter({ name: "calls_total", help: "Calls.", labelNames: ["provider", "status"], registers: [theirs] });
    const histogram = new Histogram({ name: "latency_seconds", help: "Latency.", labelNames: ["provider"], buckets: BUCKETS, registers: [theirs] });
    for (const [provider, value] of OBSERVED) {
      counter.inc({ provider, status: "200" });
      histogram.observe({ provider }, value);
    }
    counter.inc({ provider: "openai", status: "429" }, 2);

    const ours = new Registry();
    const cells = new LabelledCounter("calls_total", "Calls.", ["provider", "status"]);
    const latency = new LabelledHistogram("latency_seconds", "Latency.", ["provider"], BUCKETS);
    ours.registerMetric(cells as unknown as Metric);
    ours.registerMetric(latency as unknown as Metric);
    for (const [provider, value] of OBSERVED) {
      cells.cell(provider, "200").inc();
      latency.cell(provider).observe(value);
    }
    cells.cell("openai", "429").inc(2);

    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('latency_seconds_bucket{le="0.0005",provider="openai"} 2');
  });

  it("hands out one cell per label combination", () => {
    const cells = new LabelledCounter("c_total", "C.", ["a", "b"]);
    expect(cells.cell("x", "y")).toBe(cells.cell("x", "y"));
    expect(cells.cell("x", "y")).not.toBe(cells.cell("x", "z"));
    // The separator cannot be confused with a value's own characters.
    expect(cells.cell("x y", "z")).not.toBe(cells.cell("x", "y z"));
  });
});
