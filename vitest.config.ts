import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    environment: "node",
    // No test may reach a real provider (see the file).
    setupFiles: ["test/support/no-provider-network.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests start real servers and databases; two workers match this 2-core machine.
    maxWorkers: 2,
  },
});
