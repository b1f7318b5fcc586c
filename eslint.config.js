// Lint rules that keep the architecture honest: the layers of docs/architecture.md are enforced
// here (eslint-plugin-boundaries), built from the one table in lint/layers.js.
import boundaries from "eslint-plugin-boundaries";
import tseslint from "typescript-eslint";
import { LAYERS, RESTRICTED_PACKAGES } from "./lint/layers.js";

/** Tests may wire real adapters together; the layers are for production code. */
const TEST_FILES = ["src/**/*.test.ts", "src/**/*.contract.ts"];

/**
 * One policy per layer: it may import its own files, the layers it lists and any package but the
 * restricted ones it does not list. Anything else, including a file no layer claims, is an error.
 */
function layerPolicies() {
  return [
    { allow: { to: { module: { origin: ["external", "core"] } } } },
    ...LAYERS.flatMap(({ layer, mayImport, packages }) => {
      const from = { file: { categories: layer } };
      const everything = mayImport.includes("*");
      const forbiddenPackages = packages.includes("*") ? [] : RESTRICTED_PACKAGES.filter((name) => !packages.includes(name));
      return [
        { from, allow: { to: everything ? { module: { origin: "local" } } : { file: { categories: [layer, ...mayImport] } } } },
        ...(forbiddenPackages.length === 0
          ? []
          : [
              {
                from,
                disallow: { to: { module: { source: forbiddenPackages } } },
                message: `${layer} may not use {{ to.module.source }}: only the layers that list it in lint/layers.js may (docs/architecture.md).`,
              },
            ]),
      ];
    }),
  ];
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "data/**", "bench/results/**", "coverage/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.tsx"],
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
  { files: ["vitest.config.ts", "web/vite.config.ts"], rules: { "no-restricted-syntax": "off" } },
  // The import resolver is loaded with require() by the lint machinery.
  { files: ["lint/**/*.cjs"], languageOptions: { sourceType: "commonjs" }, rules: { "@typescript-eslint/no-require-imports": "off" } },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/config/**", ...TEST_FILES],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read configuration in src/config only; pass values in." },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: TEST_FILES,
    plugins: { boundaries },
    settings: {
      "boundaries/files": LAYERS.map(({ layer, files }) => ({ category: layer, pattern: files })),
      // A file belongs to the first layer that claims it (store/ports.ts before store/**).
      "boundaries/files-single-match": true,
      "boundaries/dependency-nodes": ["import", "dynamic-import", "export"],
      "boundaries/root-path": import.meta.dirname,
      // `./x.js` in the sources names `./x.ts`; this resolver tells the rules which file that is.
      "import/resolver": { [new URL("./lint/resolve-ts.cjs", import.meta.url).pathname]: {} },
    },
    rules: {
      "boundaries/no-unknown-files": "error",
      "boundaries/dependencies": [
        "error",
        { default: "disallow", checkAllOrigins: true, checkUnknownLocals: true, checkInternals: false, policies: layerPolicies() },
      ],
    },
  },
);
