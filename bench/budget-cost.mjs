// The budget step's own cost per gateway call on one instance (SQLite: counters in memory), as the
// pipeline runs it for an owner with a monthly budget: the worst case from the body, the
// reservation, and the settlement to the real cost (gathered and applied every 200 ms).
// `npm run build && node bench/budget-cost.mjs`. The full benchmark (`--budget`) measures a
// Keyport with a budget next to one without; this tells the step's share without its noise.
import { createMemoryLedger } from "../dist/budgets/memory-ledger.js";
import { createPeriodClock } from "../dist/budgets/period.js";
import { createSettlementBatcher } from "../dist/budgets/settlements.js";
import { createCallBudget } from "../dist/gateway/steps/budget.js";
import { costOf, loadPriceTable } from "../dist/usage/pricing.js";

const ledger = createMemoryLedger({ settledSpend: async (_owner, _month, counters) => Object.fromEntries(counters.map((counter) => [counter, 0])) });
const settlements = createSettlementBatcher({ adjust: ledger.adjust, intervalMs: 200, onCapPassed: () => {}, onError: (error) => console.error(error) });
const priceTable = loadPriceTable();
const limits = { budgetNanoUsd: Number.MAX_SAFE_INTEGER, thresholdNanoUsd: null };
const budget = createCallBudget({
  ledger,
  settlements,
  limits: { get: () => limits },
  tiers: { premium: { byokAllowed: true } },
  pricing: { pricesFor: (provider, model) => priceTable.pricesFor(provider, model), costOf },
  period: createPeriodClock(() => new Date()),
  notices: { exceeded: () => {}, thresholdReached: () => {} },
});
const body = Buffer.from(JSON.stringify({ model: "gpt-4o-mini", max_tokens: 64, messages: [{ role: "user", content: "Say hello in one short sentence." }] }));
const call = {
  endpoint: { isBilled: true },
  adapter: { id: "openai" },
  principal: { owner: "user:bench", tier: "premium" },
  credential: { source: "byok", keyId: "key_bench", row: { monthlyLimitNanoUsd: null } },
  prepared: { model: "gpt-4o-mini", body },
};
const record = { inputTokens: 14, outputTokens: 9, cachedInputTokens: 0, cacheWriteTokens: null, costNanoUsd: 7_500, status: "ok" };

/** Calls measured, after a warm-up of 20,000; `PER_TURN` of them per turn of the event loop, as under load. */
const N = 200_000;
const PER_TURN = Number(process.argv[2] ?? 10);
const turn = () => new Promise((resolve) => setImmediate(resolve));
async function run(calls) {
  for (let done = 0; done < calls; done += PER_TURN) {
    const reservations = [];
    for (let i = 0; i < PER_TURN; i++) reservations.push(budget.reserve(call));
    for (const reservation of await Promise.all(reservations)) budget.settle(reservation, record);
    await turn();
  }
}
await run(20_000);
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await run(N);
const t1 = process.hrtime.bigint();
const cpu = process.cpuUsage(cpu0);
console.log(`${PER_TURN} calls per turn; per call (reserve + settle): wall ${(Number(t1 - t0) / 1e3 / N).toFixed(2)} µs, cpu ${((cpu.user + cpu.system) / N).toFixed(2)} µs`);
await settlements.close();
