// Closed-loop load for maximum throughput: autocannon keeps `connections` requests in flight,
// each connection sending its next request as soon as the previous answer is complete.
import autocannon from "autocannon";

/**
 * @typedef {object} ClosedLoopOptions
 * @property {string} origin
 * @property {{ method: "POST", path: string, headers: Record<string, string>, body: Buffer }} request
 * @property {number} connections
 * @property {number} amount requests to complete; a fixed count (not a duration) so that every
 *   request sent is answered and counted, which the usage-record check needs
 * @property {string} [streamEnd] when set, a response body without it counts as a mismatch
 * @property {() => void} [onStart] called just before the first request
 * @property {() => void} [onFinish] called as the last response arrives (CPU snapshots go here:
 *   autocannon itself reports up to a second later)
 */

/**
 * @typedef {object} ClosedLoopResult
 * @property {number} requests responses received
 * @property {number} status2xx
 * @property {number} errors non-2xx, connection errors, timeouts and mismatches
 * @property {Record<string, number>} errorKinds
 * @property {number} elapsedSeconds first request → last response
 * @property {number} requestsPerSecond 2xx responses per elapsed second
 * @property {{ p50: number, p90: number, p99: number, max: number }} latencyMs autocannon's, whole milliseconds
 */

/**
 * @param {ClosedLoopOptions} options
 * @returns {Promise<ClosedLoopResult>}
 */
export function runClosedLoop(options) {
  const { origin, request, connections, amount, streamEnd } = options;
  // autocannon writes its own Content-Length; a second one would make the request invalid.
  const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => name.toLowerCase() !== "content-length"));
  return new Promise((resolve, reject) => {
    let responses = 0;
    let endNs = 0n;
    const finish = () => {
      if (endNs !== 0n) return;
      endNs = process.hrtime.bigint();
      options.onFinish?.();
    };
    options.onStart?.();
    const startNs = process.hrtime.bigint();
    const tracker = autocannon(
      {
        url: `${origin}${request.path}`,
        method: request.method,
        headers,
        body: request.body,
        connections: Math.min(connections, amount),
        amount,
        pipelining: 1,
        timeout: 10,
        // autocannon reports at its next sample tick; a short interval keeps the dead time short.
        sampleInt: 100,
        ...(streamEnd === undefined ? {} : { verifyBody: (body) => typeof body === "string" && body.includes(streamEnd) }),
      },
      (error, result) => {
        if (error) return reject(error);
        finish();
        const elapsedSeconds = Number(endNs - startNs) / 1e9;
        /** @type {Record<string, number>} */
        const errorKinds = {};
        for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
          if (!status.startsWith("2")) errorKinds[`status_${status}`] = count;
        }
        if (result.errors > result.timeouts) errorKinds.connection_error = result.errors - result.timeouts;
        if (result.timeouts > 0) errorKinds.timeout = result.timeouts;
        if (result.mismatches > 0) errorKinds.incomplete_stream = result.mismatches;
        resolve({
          requests: responses,
          status2xx: result["2xx"],
          errors: result.non2xx + result.errors + result.mismatches,
          errorKinds,
          elapsedSeconds,
          requestsPerSecond: elapsedSeconds > 0 ? result["2xx"] / elapsedSeconds : 0,
          latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
        });
      },
    );
    tracker.on("response", () => {
      responses += 1;
      if (responses === amount) finish();
    });
  });
}
