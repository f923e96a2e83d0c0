/**
 * Global setup of the vitest `lab` project: builds the sidecar (tests run dist/cli.js in the
 * controller), brings the shared test instance up once (or reuses it if it is up), hands its name to
 * the tests (`inject("labName")`), and takes it down at the end, whether the tests passed or not.
 *
 * Z2MHA_LAB_TEST_NAME picks the instance (default z2mhatest, never the interactive default z2mha);
 * Z2MHA_LAB_KEEP=1 leaves it up afterwards for a look around (`npm run lab -- --name z2mhatest status`).
 */
import { execFileSync } from "node:child_process";
import type { TestProject } from "vitest/node";
import { Lab, REPO } from "./world.js";

export const TEST_LAB_NAME = process.env.Z2MHA_LAB_TEST_NAME ?? "z2mhatest";

declare module "vitest" {
  export interface ProvidedContext {
    labName: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync("npx", ["tsup", "--silent"], { cwd: REPO, stdio: "inherit" });
  const started = Date.now();
  // Three nodes: one active and two standbys, so that "the other standbys still get it" is testable.
  await Lab.up({ name: TEST_LAB_NAME, nodes: 3 });
  console.log(`lab ${TEST_LAB_NAME} up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide("labName", TEST_LAB_NAME);
  return async () => {
    if (process.env.Z2MHA_LAB_KEEP === "1") {
      console.log(`lab ${TEST_LAB_NAME} left up (Z2MHA_LAB_KEEP=1)`);
      return;
    }
    await Lab.destroy(TEST_LAB_NAME);
  };
}
