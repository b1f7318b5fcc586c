// Open-loop load: requests are due at a fixed rate whether or not earlier ones have answered,
// and each is timed from when it was DUE, not from when it left, so any queueing (in the
// generator, the network or the server) counts as latency instead of silently lowering the rate.
import { Pool } from "undici";
import { summarize } from "./stats.mjs";

/**
 * @typedef {object} OpenLoopOptions
 * @property {string} origin
 * @property {{ method: "POST", path: string, headers: Record<string, string>, body: Buffer }} request
 * @property {number} ratePerSecond
 * @property {number} durationSeconds
 * @property {boolean} stream read the body as server-sent events (time to first event, completeness)
 * @property {string} streamEnd text a complete stream contains
 * @property {number} [connections] pool size; enough to never queue at the client (default 128)
 * @property {number} [timeoutMs] a request silent this long is an error (default 10 s)
 */

/**
 * @typedef {object} OpenLoopResult
 * @property {number} requests
 * @property {number} ok 2xx with a complete body
 * @property {number} status2xx 2xx responses, complete or not
 * @property {number} errors
 * @property {Record<string, number>} errorKinds
 * @property {number} elapsedSeconds from the first due time to the last response
 * @property {number} requestsPerSecond completed requests per elapsed second
 * @property {ReturnType<typeof summarize>} latencyMs due → last byte
 * @property {ReturnType<typeof summarize> | null} firstEventMs due → first body chunk holding `data:` (streams)
 * @property {ReturnType<typeof summarize>} lagMs due → handed to the client (the generator's own lateness)
 */

/**
 * Opens the connections the first second will need (so no timed request pays for a TCP
 * handshake) and returns `run`, which sends `ratePerSecond × durationSeconds` requests, request i
 * due at a random time in `startNs + [i, i + 1) / rate`, and waits for every one of them to
 * finish. Several loops prepared side by side can run over the same seconds (each with its own
 * connections and timer).
 * @param {OpenLoopOptions} options
 * @returns {Promise<{ run(startNs: bigint): Promise<OpenLoopResult> }>}
 */
export async function prepareOpenLoop(options) {
  const total = Math.max(1, Math.round(options.ratePerSecond * options.durationSeconds));
  const pool = new Pool(options.origin, { connections: options.connections ?? 128, pipelining: 1 });
  await warmConnections(pool, Math.min(16, total));
  return { run: (startNs) => runOpenLoop(options, pool, total, startNs) };
}

/**
 * @param {OpenLoopOptions} options
 * @param {Pool} pool
 * @param {number} total
 * @param {bigint} startNs
 * @returns {Promise<OpenLoopResult>}
 */
async function runOpenLoop(options, pool, total, startNs) {
  const { request, ratePerSecond, stream, streamEnd } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalNs = 1e9 / ratePerSecond;

  const latencies = [];
  const firstEvents = [];
  const lags = [];
  /** @type {Record<string, number>} */
  const errorKinds = {};
  let ok = 0;
  let status2xx = 0;
  let finished = 0;
  let lastEndNs = 0n;
  // Request i is due at a random point of its own interval [i, i + 1) / rate: the rate is exact
  // over any second, and loops run side by side against other targets meet each other's requests
  // at random, never in a fixed order that would always put one target just behind another.
  const offsets = Float64Array.from({ length: total }, () => Math.random());
  const dueOf = (index) => startNs + BigInt(Math.round((index + (offsets[index] ?? 0)) * intervalNs));
  const fail = (kind) => {
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };

  /** @param {bigint} dueNs */
  async function sendOne(dueNs) {
    lags.push(Number(process.hrtime.bigint() - dueNs) / 1e6);
    try {
      const response = await pool.request({
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      let firstEventNs = 0n;
      let text = "";
      for await (const chunk of response.body) {
        text += chunk.toString("utf8");
        if (stream && firstEventNs === 0n && text.includes("data:")) firstEventNs = process.hrtime.bigint();
      }
      const endNs = process.hrtime.bigint();
      if (endNs > lastEndNs) lastEndNs = endNs;
      const isSuccess = response.statusCode >= 200 && response.statusCode < 300;
      if (isSuccess) status2xx += 1;
      if (!isSuccess) return fail(`status_${response.statusCode}`);
      if (stream ? !text.includes(streamEnd) || firstEventNs === 0n : !isJsonObject(text)) return fail(stream ? "incomplete_stream" : "bad_body");
      ok += 1;
      latencies.push(Number(endNs - dueNs) / 1e6);
      if (stream) firstEvents.push(Number(firstEventNs - dueNs) / 1e6);
    } catch (error) {
      const endNs = process.hrtime.bigint();
      if (endNs > lastEndNs) lastEndNs = endNs;
      fail(errorCode(error));
    }
  }

  await new Promise((resolve) => {
    let next = 0;
    const onDone = () => {
      finished += 1;
      if (finished === total) resolve(undefined);
    };
    const tick = () => {
      const now = process.hrtime.bigint();
      while (next < total && dueOf(next) <= now) {
        sendOne(dueOf(next)).finally(onDone);
        next += 1;
      }
      if (next >= total) return;
      const waitMs = Number(dueOf(next) - process.hrtime.bigint()) / 1e6;
      // Timers have millisecond granularity. Only the last 0.3 ms are waited out with
      // setImmediate: spinning longer would take CPU from the processes being measured on a
      // small machine, so the generator's lateness (reported as lagMs) stays around 0.5 ms.
      if (waitMs > 0.3) setTimeout(tick, Math.floor(waitMs));
      else setImmediate(tick);
    };
    tick();
  });
  await pool.close();

  const elapsedSeconds = Number(lastEndNs - startNs) / 1e9;
  const errors = Object.values(errorKinds).reduce((sum, count) => sum + count, 0);
  return {
    requests: total,
    ok,
    status2xx,
    errors,
    errorKinds,
    elapsedSeconds,
    requestsPerSecond: elapsedSeconds > 0 ? (ok + errors) / elapsedSeconds : 0,
    latencyMs: summarize(latencies),
    firstEventMs: stream ? summarize(firstEvents) : null,
    lagMs: summarize(lags),
  };
}

/**
 * Opens `count` keep-alive connections with cheap requests that do not reach the target's
 * gateway logic (a 404 on an unknown path), so the first timed requests do not pay for the TCP
 * handshake.
 * @param {Pool} pool
 * @param {number} count
 */
async function warmConnections(pool, count) {
  await Promise.all(
    Array.from({ length: count }, async () => {
      try {
        const response = await pool.request({ method: "GET", path: "/__bench_warm_up__" });
        await response.body.dump();
      } catch {
        // Only a warm-up: a failure here shows up in the timed requests.
      }
    }),
  );
}

/** @param {string} text */
function isJsonObject(text) {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null;
  } catch {
    return false;
  }
}

/** @param {unknown} error */
function errorCode(error) {
  const code = /** @type {{ code?: unknown } | null} */ (error)?.code;
  return typeof code === "string" ? code : "request_failed";
}
