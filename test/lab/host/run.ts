import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";

export interface RunOptions {
  /** Written to the command's stdin, which is closed afterwards. */
  input?: string | Buffer;
  /** Kill the command (and its process group) after this many milliseconds. */
  timeout?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when the command was killed because it ran out of time. */
  timedOut: boolean;
}

export class LabCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    const why = result.timedOut ? "timed out" : `exited with ${result.code}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-15).join("\n");
    super(`${argv.map(shellQuote).join(" ")} ${why}${detail ? `:\n${detail}` : ""}`);
    this.name = "LabCommandError";
  }
}

/**
 * POSIX shell quoting of one word: for messages, and for the one place a shell is unavoidable
 * (the remote command line ssh hands to the login shell).
 */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}

/** Runs argv (never through a shell) and collects its output; never throws for a non-zero exit. */
export function tryRun(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("empty command");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
      // Own process group, so a timeout also kills what the command started (nsenter's child).
      detached: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeout === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup(child.pid);
          }, options.timeout);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on("error", () => {});
    child.on("error", (error) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + constants.signals[signal] : 1),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        timedOut,
      });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Runs argv and throws a LabCommandError unless it exits 0. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await tryRun(argv, options);
  if (result.code !== 0 || result.timedOut) throw new LabCommandError(argv, result);
  return result;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns a value other than undefined, or fails after `timeout` ms with a
 * message that names what was awaited and the last thing the probe said.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeout = 30_000, interval = 200 }: { timeout?: number; interval?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last = "";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
      );
    }
    await sleep(interval);
  }
}

/** The last lines of a log file, for error messages; a note when there is none. */
export function lastLines(path: string, count = 10): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-count).join("\n");
  } catch {
    return `(nothing in ${path})`;
  }
}
