import { collectDefaultMetrics, Counter, Gauge, type Metric, Registry } from "prom-client";
import type { CallContext } from "../gateway/call-context.js";
import type { CallEndListener } from "../gateway/steps/record.js";
import type { KeyStatus, ProviderId } from "../lib/domain.js";
import { DEGRADATION_NAMES, type HealthRegistry } from "../lib/health-registry.js";
import type { MetricsPort, RetryReason } from "../lib/metrics-port.js";
import type { GatewayEndpoint } from "../providers/spec.js";
import type { UsageRecord } from "../store/ports.js";
import type { UsageRecorderStats } from "../usage/usage-recorder.js";
import { type CounterCell, type HistogramCell, LabelledCounter, LabelledHistogram } from "./label-cells.js";

export type PrometheusMetricsOptions = {
  /** Dependency states, degradations and readiness, read at scrape time. */
  health: Pick<HealthRegistry, "snapshot">;
  /** The usage writer's counters, read at scrape time. */
  usageStats: () => UsageRecorderStats;
  /** Node's process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean;
};

export type PrometheusMetrics = MetricsPort & {
  /** The gateway's end-of-call listener: calls, refusals, latencies, fallbacks, tokens. */
  callEnded: CallEndListener;
  /** The exposition text and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
};

/** Keyport's own overhead: sub-millisecond to a few hundred milliseconds. */
const ADDED_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** A provider's answer: tens of milliseconds to minutes. */
const UPSTREAM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The cells one endpoint's calls touch, found once and kept per endpoint. */
type EndpointChildren = {
  upstream: HistogramCell;
  ttfb: HistogramCell;
  added: Map<string, HistogramCell>;
  calls: Map<string, CounterCell>;
  refusals: Map<string, CounterCell>;
  fallbacks: CounterCell;
  tokens: Map<string, CounterCell>;
};

/**
 * Keyport's Prometheus metrics in their own registry (one per app, so instances in one process
 * stay apart). Every label value comes from a bounded vocabulary: provider, endpoint name, key
 * source, HTTP status, usage status, Keyport's error codes, retry reasons, key statuses,
 * dependency and degradation names. No owner, key id, token or model name is ever a label: they
 * are private, and their number is unbounded.
 */
export function createPrometheusMetrics(options: PrometheusMetricsOptions): PrometheusMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  // The metrics a call touches are plain cells (label-cells.ts): prom-client's own children hash
  // their label values on every increment. The registry reads the cells when scraped.
  const register = <M extends LabelledCounter | LabelledHistogram>(metric: M): M => {
    registry.registerMetric(metric as unknown as Metric);
    return metric;
  };
  const calls = register(
    new LabelledCounter(
      "keyport_gateway_calls_total",
      "Gateway calls by provider, endpoint, key source (byok, platform, none), HTTP status and outcome (ok, error, partial, client_aborted, shutdown_cut, refused: never reached the provider).",
      ["provider", "endpoint", "source", "status", "outcome"],
    ),
  );
  const refusals = register(
    new LabelledCounter(
      "keyport_gateway_errors_total",
      "Gateway calls Keyport answered with its own error instead of the provider's answer, by error code (rate_limited, budget_exceeded, unauthenticated, key_undecryptable, upstream_timeout, ...).",
      ["provider", "code"],
    ),
  );
  const added = register(
    new LabelledHistogram(
      "keyport_gateway_added_latency_seconds",
      "Keyport's own share of the time to the client's first byte: the time to first byte minus the time spent waiting for the provider's response headers.",
      ["provider", "endpoint", "source"],
      ADDED_BUCKETS,
    ),
  );
  const upstream = register(
    new LabelledHistogram(
      "keyport_gateway_upstream_latency_seconds",
      "Time waiting for the provider's response headers, every attempt and the pauses between retries included (calls that went upstream).",
      ["provider", "endpoint"],
      UPSTREAM_BUCKETS,
    ),
  );
  const ttfb = register(
    new LabelledHistogram(
      "keyport_gateway_stream_first_byte_seconds",
      "Streamed calls: time from the call's arrival to the first byte sent to the client.",
      ["provider", "endpoint"],
      UPSTREAM_BUCKETS,
    ),
  );
  const retries = register(
    new LabelledCounter("keyport_gateway_upstream_retries_total", "Upstream attempts tried again, by reason (rate_limited, unavailable, timeout, connection).", [
      "provider",
      "reason",
    ]),
  );
  const fallbacks = register(
    new LabelledCounter("keyport_gateway_fallbacks_total", "Calls that went again on the platform key after the provider refused the owner's own key.", [
      "provider",
      "endpoint",
    ]),
  );
  const tokens = register(
    new LabelledCounter("keyport_gateway_tokens_total", "Tokens the providers reported, by key source and kind (input, output).", ["provider", "endpoint", "source", "kind"]),
  );
  const keyStatusChanges = register(
    new LabelledCounter("keyport_key_status_changes_total", "Key status changes made from what a provider (or the decryption) said, by the new status.", [
      "provider",
      "status",
    ]),
  );

  // The usage writer and health are read when scraped: nothing on the call's path.
  let lastUsage: UsageRecorderStats = { queued: 0, written: 0, dropped: 0, failedBatches: 0 };
  const usageWritten = new Counter({ name: "keyport_usage_records_written_total", help: "Usage records written to the database.", registers: [registry] });
  const usageDropped = new Counter({
    name: "keyport_usage_records_dropped_total",
    help: "Usage records dropped (queue full, writer closed, invalid record).",
    registers: [registry],
  });
  const usageBatchFailures = new Counter({
    name: "keyport_usage_batch_failures_total",
    help: "Usage batches whose write failed (each is retried with backoff).",
    registers: [registry],
  });
  new Gauge({
    name: "keyport_usage_queue_depth",
    help: "Usage records accepted and not yet written.",
    registers: [registry],
    collect() {
      const stats = options.usageStats();
      usageWritten.inc(Math.max(0, stats.written - lastUsage.written));
      usageDropped.inc(Math.max(0, stats.dropped - lastUsage.dropped));
      usageBatchFailures.inc(Math.max(0, stats.failedBatches - lastUsage.failedBatches));
      lastUsage = stats;
      this.set(stats.queued);
    },
  });
  new Gauge({
    name: "keyport_dependency_up",
    help: "1 when the dependency answered its last check, 0 when it is unreachable (configured dependencies only).",
    labelNames: ["dependency"] as const,
    registers: [registry],
    collect() {
      for (const [name, state] of Object.entries(options.health.snapshot().dependencies)) {
        if (state.status !== "not_configured") this.set({ dependency: name }, state.status === "ok" ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: "keyport_degraded",
    help: "1 while this instance runs with the named degradation (see /readyz), else 0.",
    labelNames: ["name"] as const,
    registers: [registry],
    collect() {
      const active = new Set(options.health.snapshot().degraded.map((entry) => entry.name));
      for (const name of DEGRADATION_NAMES) this.set({ name }, active.has(name) ? 1 : 0);
    },
  });
  new Gauge({
    name: "keyport_ready",
    help: "1 when /readyz would answer 200.",
    registers: [registry],
    collect() {
      this.set(options.health.snapshot().ready ? 1 : 0);
    },
  });
  new Gauge({
    name: "keyport_key_announcements_pending",
    help: "Committed key changes whose announcement to the other instances is being retried.",
    registers: [registry],
    collect() {
      this.set(options.health.snapshot().pendingAnnouncements);
    },
  });

  const byEndpoint = new WeakMap<GatewayEndpoint, EndpointChildren>();
  function childrenOf(provider: ProviderId, endpoint: GatewayEndpoint): EndpointChildren {
    let children = byEndpoint.get(endpoint);
    if (children === undefined) {
      children = {
        upstream: upstream.cell(provider, endpoint.name),
        ttfb: ttfb.cell(provider, endpoint.name),
        added: new Map(),
        calls: new Map(),
        refusals: new Map(),
        fallbacks: fallbacks.cell(provider, endpoint.name),
        tokens: new Map(),
      };
      byEndpoint.set(endpoint, children);
    }
    return children;
  }

  function countTokens(children: EndpointChildren, provider: ProviderId, endpoint: string, source: string, kind: string, count: number | null): void {
    if (count === null || count <= 0) return;
    const key = `${source} ${kind}`;
    let child = children.tokens.get(key);
    if (child === undefined) children.tokens.set(key, (child = tokens.cell(provider, endpoint, source, kind)));
    child.inc(count);
  }

  function callEnded(call: Readonly<CallContext>, record: UsageRecord | undefined): void {
    const provider = call.adapter.id;
    const { endpoint, outcome } = call;
    const children = childrenOf(provider, endpoint);
    const source = call.servedBy?.source ?? call.credential?.source ?? "none";
    const httpStatus = outcome?.httpStatus ?? 0;
    const result = record === undefined ? "refused" : record.status;
    const callKey = `${source} ${httpStatus} ${result}`;
    let callChild = children.calls.get(callKey);
    if (callChild === undefined) children.calls.set(callKey, (callChild = calls.cell(provider, endpoint.name, source, String(httpStatus), result)));
    callChild.inc();

    const code = outcome?.errorCode;
    if (code !== undefined) {
      let refusal = children.refusals.get(code);
      if (refusal === undefined) children.refusals.set(code, (refusal = refusals.cell(provider, code)));
      refusal.inc();
    }
    if (call.credential?.source === "platform" && call.credential.reason === "own_key_failed") children.fallbacks.inc();

    const firstByteAtMs = outcome?.firstByteAtMs ?? null;
    if (firstByteAtMs !== null) {
      const toFirstByteMs = firstByteAtMs - call.startedAtMs;
      let addedChild = children.added.get(source);
      if (addedChild === undefined) children.added.set(source, (addedChild = added.cell(provider, endpoint.name, source)));
      addedChild.observe(Math.max(0, toFirstByteMs - call.upstreamMs) / 1000);
      if (outcome?.streamed === true) children.ttfb.observe(toFirstByteMs / 1000);
    }
    if (record !== undefined) {
      children.upstream.observe(call.upstreamMs / 1000);
      countTokens(children, provider, endpoint.name, source, "input", record.inputTokens);
      countTokens(children, provider, endpoint.name, source, "output", record.outputTokens);
    }
  }

  return {
    callEnded,
    upstreamRetried(provider: ProviderId, reason: RetryReason): void {
      retries.cell(provider, reason).inc();
    },
    keyStatusChanged(provider: ProviderId, status: KeyStatus): void {
      keyStatusChanges.cell(provider, status).inc();
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
