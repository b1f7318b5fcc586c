import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/**
 * The Settings page: Preact, bundled into dist/web by `npm run build` and served by Keyport under
 * /portal/. JSX is compiled for Preact by Vite's own transformer (no plugin needed); the page
 * imports the typed client as `keyport/client`, from its source.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/portal/",
  publicDir: false,
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: {
    alias: { "keyport/client": fileURLToPath(new URL("../src/client/index.ts", import.meta.url)) },
  },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // One small bundle; no modulepreload polyfill (it would be an extra inline-free chunk anyway).
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
