import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

/** The integration tests run the real CLI (dist/cli.js): build it once. */
export default function setup(): void {
  execFileSync("npx", ["tsup", "--silent"], { cwd: resolve(import.meta.dirname, "../.."), stdio: "inherit" });
}
