import { defineConfig } from "tsup";

export default defineConfig({
  // ember-tool: copied to zigbee2mqtt nodes and run there with their own node (>= 18), so it must
  // stay one file that imports only node: modules (no npm dependency is installed there).
  entry: { cli: "sidecar/cli/main.ts", "ember-tool": "sidecar/coordinator/ember-tool.ts" },
  format: ["esm"],
  target: "node20",
  platform: "node",
  outDir: "dist",
  clean: true,
  sourcemap: true,
  splitting: false,
  banner: { js: "#!/usr/bin/env node" },
});
