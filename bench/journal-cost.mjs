// The usage journal's own cost per gateway call (one start line and one end line, as the
// pipeline writes them), measured alone: `npm run build && node bench/journal-cost.mjs [calls per turn]`.
// The full benchmark measures Keyport with it; this tells its share.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openUsageJournal } from "../dist/usage/usage-journal.js";
const dir = mkdtempSync(path.join(tmpdir(), "jc-"));
const journal = openUsageJournal({ directory: dir, flush: async () => {} });
const start = { id: "use_06h4bmsk42e69jkj9avg6yc268", createdAt: new Date().toISOString(), requestId: "req_06h4bmsk41rcx75pknx012zky4", owner: "user:bench", keyId: "key_06h4bmsk41rcx75pknx012zky4", source: "byok", provider: "openai", endpoint: "chat.completions", model: "gpt-4o-mini", streamed: false, reservedNanoUsd: null };
const record = { id: start.id, owner: "user:bench", keyId: start.keyId, source: "byok", provider: "openai", endpoint: "chat.completions", model: "gpt-4o-mini-2024-07-18", inputTokens: 12, outputTokens: 7, cachedInputTokens: 0, cacheWriteTokens: null, costNanoUsd: 4200, prices: { inputNanoUsdPerMTok: 150000000, outputNanoUsdPerMTok: 600000000, cachedInputNanoUsdPerMTok: 75000000, cacheWriteNanoUsdPerMTok: 0 }, status: "ok", httpStatus: 200, latencyMs: 35, ttfbMs: 20, streamed: false, requestId: start.requestId, createdAt: start.createdAt };
/** Calls measured, after a warm-up of 20,000; `PER_TURN` of them per turn of the event loop, as under load. */
const N = 200000;
const PER_TURN = Number(process.argv[2] ?? 10);
const turn = () => new Promise((resolve) => setImmediate(resolve));
async function run(calls) {
  for (let done = 0; done < calls; done += PER_TURN) {
    for (let i = 0; i < PER_TURN; i++) journal.end(journal.start(start), record);
    await turn();
  }
}
await run(20000);
const cpu0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
await run(N);
const t1 = process.hrtime.bigint(); const cpu = process.cpuUsage(cpu0);
console.log(`${PER_TURN} calls per turn; per call (start+end): wall ${(Number(t1 - t0) / 1e3 / N).toFixed(2)} µs, cpu ${((cpu.user + cpu.system) / N).toFixed(2)} µs (user ${(cpu.user/N).toFixed(2)}, sys ${(cpu.system/N).toFixed(2)})`);
await journal.close({ committed: true });
rmSync(dir, { recursive: true, force: true });
