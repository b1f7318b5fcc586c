// What the end-of-call listeners cost a gateway call: the access log line and the metrics, each
// run on one call's context in a tight loop (after a warm-up), in microseconds of CPU per call.
// Run after `npm run build`: `node bench/listeners.mjs [--calls 200000]`. The log line goes
// through Keyport's own logger (pino) to /dev/null with synchronous writes, as
// stdout to a file does. The figures are per call on this machine; compare them with the
// benchmark's CPU per request (`CPUs/1k` closed loop: seconds per 1,000 requests).
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { createAccessLog } from "../dist/gateway/access-log.js";
import { createLogger } from "../dist/lib/logger.js";
import { createHealthRegistry } from "../dist/lib/health-registry.js";
import { createPrometheusMetrics } from "../dist/metrics/prometheus-metrics.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "200000" } } });
const calls = Number(values.calls);

const endpoint = { name: "chat.completions" };
const now = performance.now();
/** A finished BYOK chat call, as `finishCall` hands it to the listeners. */
const call = {
  request: { id: "req_01jb8m2c3d4e5f6g7h8j9k0m1n", routePath: "/openai/v1/chat/completions", url: "/openai/v1/chat/completions", headers: {}, ip: "127.0.0.1" },
  adapter: { id: "openai" },
  endpoint,
  startedAtMs: now - 1.7,
  createdAt: new Date(),
  principal: { owner: "user:bench", sub: "bench", tier: "premium" },
  prepared: { model: "gpt-4o-mini", stream: false },
  credential: { source: "byok", keyId: "key_01jb8m2c3d4e5f6g7h8j9k0m1n" },
  servedBy: { source: "byok", keyId: "key_01jb8m2c3d4e5f6g7h8j9k0m1n" },
  outcome: { status: "ok", httpStatus: 200, usage: {}, reportedModel: "gpt-4o-mini-2024-07-18", streamed: false, firstByteAtMs: now - 0.2 },
  upstreamMs: 1.1,
};
const record = { model: "gpt-4o-mini-2024-07-18", status: "ok", inputTokens: 12, outputTokens: 9 };

const logger = createLogger({ level: "info", destination: pino.destination({ dest: "/dev/null", sync: true }) });
const metrics = createPrometheusMetrics({
  health: createHealthRegistry({ usesRedis: false, rateLimitOnError: "open" }),
  usageStats: () => ({ queued: 0, written: 0, dropped: 0, failedBatches: 0 }),
  processMetrics: false,
});
const listeners = {
  // As app.ts wires it: the access log's logger has no path redaction.
  "access log": createAccessLog(logger.child({}, { redact: [] })),
  metrics: metrics.callEnded,
};

function measure(listener) {
  for (let i = 0; i < 20_000; i += 1) listener(call, record);
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < calls; i += 1) listener(call, record);
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  return { cpuUs: (cpu.user + cpu.system) / calls, wallUs: (wallMs * 1000) / calls };
}

for (const [name, listener] of Object.entries(listeners)) {
  const { cpuUs, wallUs } = measure(listener);
  process.stdout.write(`${name.padEnd(12)} ${cpuUs.toFixed(2)} µs CPU per call (${wallUs.toFixed(2)} µs wall), ${calls} calls\n`);
}
