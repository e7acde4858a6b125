import { defineConfig } from "vitest/config";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The build is committed under the Python package so that `pip install` alone
// serves the UI; file names carry content hashes only, so rebuilding the same
// source gives byte-identical output that CI can compare.
// (Relative to this directory, vite's root.)
const outDir = "../src/secperf/web/static";

export default defineConfig({
  plugins: [svelte()],
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    assetsDir: "assets",
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8765",
      "/healthz": "http://127.0.0.1:8765",
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
    // The theme test reads app.css as text (?raw); vitest empties CSS it does not process.
    css: { include: [/app\.css/] },
  },
});
