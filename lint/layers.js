// The architecture's layers: which part of src/ may import which. This table is the one source:
// eslint.config.js builds its boundary rules from it, and docs/architecture.md shows it (a test
// checks that the page holds exactly `renderLayerTable()`).

/**
 * Packages that mark a layer as a concrete adapter. Only the layers that list one may import it;
 * every other package is free for all.
 */
export const RESTRICTED_PACKAGES = ["fastify", "@fastify/*", "ioredis", "kysely", "pg", "better-sqlite3", "prom-client"];

/**
 * One row per layer. A file belongs to the first row whose `files` glob matches it, so narrower
 * rows come before the folder they sit in. A layer may always import its own files.
 * @type {readonly { layer: string; files: string; mayImport: readonly string[]; packages: readonly string[] }[]}
 */
export const LAYERS = [
  { layer: "lib", files: "src/lib/**", mayImport: [], packages: [] },
  { layer: "config", files: "src/config/**", mayImport: ["lib"], packages: [] },
  { layer: "crypto", files: "src/crypto/**", mayImport: ["lib"], packages: [] },
  { layer: "store-ports", files: "src/store/ports.ts", mayImport: ["lib"], packages: [] },
  { layer: "store", files: "src/store/**", mayImport: ["store-ports", "lib"], packages: ["kysely", "pg", "better-sqlite3"] },
  { layer: "provider-adapters", files: "src/providers/*/**/*", mayImport: ["providers", "lib"], packages: [] },
  { layer: "providers", files: "src/providers/**", mayImport: ["provider-adapters", "lib"], packages: [] },
  { layer: "redis", files: "src/redis/**", mayImport: ["lib"], packages: ["ioredis"] },
  {
    layer: "redis-adapters",
    files: "src/{cache,limits,budgets}/redis-*.ts",
    mayImport: ["cache", "limits", "budgets", "redis", "config", "store-ports", "lib"],
    packages: ["ioredis"],
  },
  { layer: "audit", files: "src/audit/**", mayImport: ["store-ports", "lib"], packages: [] },
  { layer: "usage", files: "src/usage/**", mayImport: ["store-ports", "lib"], packages: [] },
  { layer: "limits", files: "src/limits/**", mayImport: ["config", "lib"], packages: [] },
  { layer: "cache", files: "src/cache/**", mayImport: ["lib"], packages: [] },
  { layer: "budgets", files: "src/budgets/**", mayImport: ["config", "store-ports", "lib"], packages: [] },
  { layer: "auth", files: "src/auth/**", mayImport: ["limits", "config", "lib"], packages: [] },
  {
    layer: "vault",
    files: "src/vault/**",
    mayImport: ["audit", "crypto", "limits", "providers", "store-ports", "lib"],
    packages: [],
  },
  { layer: "portal", files: "src/portal/**", mayImport: ["config", "store-ports", "lib"], packages: [] },
  {
    layer: "notifications",
    files: "src/notifications/**",
    mayImport: ["config", "crypto", "store-ports", "vault", "lib"],
    packages: [],
  },
  {
    layer: "gateway",
    files: "src/gateway/**",
    mayImport: ["auth", "audit", "budgets", "cache", "config", "crypto", "limits", "providers", "store-ports", "usage", "vault", "lib"],
    packages: [],
  },
  {
    layer: "api",
    files: "src/api/**",
    mayImport: ["auth", "audit", "budgets", "config", "notifications", "portal", "usage", "vault", "lib"],
    packages: ["fastify", "@fastify/*"],
  },
  // Prometheus: the gateway's end-of-call listener and the MetricsPort implementation; the
  // domain reports through lib/metrics-port.ts and never sees prom-client.
  {
    layer: "metrics",
    files: "src/metrics/**",
    mayImport: ["gateway", "providers", "store-ports", "usage", "lib"],
    packages: ["prom-client"],
  },
  { layer: "mock-provider", files: "src/mock-provider/**", mayImport: ["lib"], packages: [] },
  {
    layer: "cli",
    files: "src/cli/**",
    mayImport: ["app", "auth", "config", "crypto", "mock-provider", "portal", "vault", "lib"],
    packages: [],
  },
  // keyport/client ships to platform backends on its own: it imports nothing else from src.
  { layer: "client", files: "src/client/**", mayImport: [], packages: [] },
  { layer: "app", files: "src/app*.ts", mayImport: ["*"], packages: ["*"] },
];

/** The table as docs/architecture.md shows it (a Markdown table, one row per layer). */
export function renderLayerTable(layers = LAYERS) {
  const list = (values) => (values.length === 0 ? "—" : values.map((value) => (value === "*" ? "everything" : `\`${value}\``)).join(", "));
  return [
    "| layer | files | may import | may use (of the restricted packages) |",
    "|---|---|---|---|",
    ...layers.map((row) => `| \`${row.layer}\` | \`${row.files}\` | ${list(row.mayImport)} | ${list(row.packages)} |`),
  ].join("\n");
}
