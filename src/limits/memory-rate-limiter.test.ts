import { createMemoryRateLimiter } from "./memory-rate-limiter.js";
import { runRateLimiterContract } from "./rate-limiter.contract.js";

runRateLimiterContract("memory", async ({ points, durationSeconds }) => createMemoryRateLimiter({ points, durationSeconds, keyPrefix: "contract" }));
