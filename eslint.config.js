// Lint rules that keep the architecture honest: the folder boundaries from docs/architecture.md
// are enforced here, not by review alone.
import tseslint from "typescript-eslint";

const concreteAdapters = [
  "**/store/kysely/**",
  "**/store/sqlite/**",
  "**/store/postgres/**",
  "**/store/migrations/**",
  "**/providers/openai/**",
  "**/providers/anthropic/**",
  "**/mock-provider/**",
];

const MODULES = ["config", "crypto", "store", "providers", "vault", "audit", "auth", "limits", "api", "mock-provider", "cli", "app"];

/** Import patterns for every module folder except the allowed ones. */
function allBut(...allowed) {
  return MODULES.filter((name) => !allowed.includes(name)).flatMap((name) => [`**/${name}/**`, `**/${name}.js`]);
}

/** `no-restricted-imports` patterns: each folder lists what it must not import. */
function forbid(files, groups, message) {
  return {
    files,
    // Tests may wire real adapters together; the boundaries are for production code.
    ignores: ["src/**/*.test.ts", "src/**/*.contract.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: groups, message }] }],
    },
  };
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "data/**", "bench/results/**", "coverage/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": ["error", { selector: "ExportDefaultDeclaration", message: "Use named exports." }],
      curly: ["error", "multi-line"],
    },
  },
  // Tool configuration files must default-export.
  { files: ["vitest.config.ts"], rules: { "no-restricted-syntax": "off" } },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/config/**", "src/**/*.test.ts", "src/**/*.contract.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read configuration in src/config only; pass values in." },
      ],
    },
  },
  forbid(["src/lib/**/*.ts"], allBut(), "src/lib is a leaf: it imports nothing else from src."),
  forbid(["src/config/**/*.ts"], allBut("config"), "config may import only lib."),
  forbid(["src/crypto/**/*.ts"], allBut("crypto"), "crypto may import only lib and node:crypto."),
  forbid(
    ["src/providers/**/*.ts"],
    ["**/store/**", "**/vault/**", "**/api/**", "**/gateway/**", "**/auth/**", "**/crypto/**"],
    "Provider adapters receive a decrypted key and a dispatcher; they never look anything up.",
  ),
  forbid(
    ["src/store/ports.ts"],
    ["kysely", "better-sqlite3", "pg", "./kysely/*", "./sqlite/*", "./postgres/*"],
    "Ports are interfaces; they know no database driver.",
  ),
  forbid(
    ["src/store/**/*.ts"],
    ["**/vault/**", "**/api/**", "**/gateway/**", "**/auth/**", "**/providers/**"],
    "The store implements ports; it knows no service.",
  ),
  forbid(
    ["src/vault/**/*.ts", "src/auth/**/*.ts"],
    [...concreteAdapters, "fastify", "**/api/**", "**/gateway/**"],
    "Services depend on ports, never on concrete adapters or the HTTP framework.",
  ),
  forbid(
    ["src/api/**/*.ts"],
    [...concreteAdapters],
    "HTTP routes call services; only src/app.ts knows concrete adapters.",
  ),
);
