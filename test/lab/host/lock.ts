import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RUN_BASE } from "./layout.js";
import { sleep } from "./run.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Runs `fn` holding the instance's lock, so two `up`/`down`/`fault` calls on one instance never
 * interleave. The lock is a file naming its holder's pid; a dead holder's lock is taken over.
 */
export async function withInstanceLock<T>(name: string, fn: () => Promise<T>, timeout = 600_000): Promise<T> {
  mkdirSync(RUN_BASE, { recursive: true, mode: 0o755 });
  const path = join(RUN_BASE, `.${name}.lock`);
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(path, "utf8"));
      } catch {
        // released meanwhile
      }
      if (holder === process.pid)
        throw new Error(`lab ${name}: this process already holds the lock (nested call)`);
      if (Number.isInteger(holder) && !alive(holder)) rmSync(path, { force: true });
      else if (Date.now() > deadline) throw new Error(`lab ${name} is busy (locked by pid ${holder})`);
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
