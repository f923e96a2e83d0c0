import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Layout } from "./layout.js";
import { type HostId, netnsName } from "./naming.js";
import { run, tryRun, waitFor } from "./run.js";

const here = dirname(fileURLToPath(import.meta.url));
const INIT_SCRIPT = join(here, "init.py");

/** The system Python (pyenv shims in root's PATH must not leak into the hosts). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** PATH inside the lab's hosts: sudo's secure_path order, so `python3` means the node's python3. */
export const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

export interface EnterOptions {
  /** Run as this user (of the host's view), with its groups; default root. */
  user?: string;
  /** Working directory inside the host; default "/". */
  cwd?: string;
  /** Added to the host's clean environment. */
  env?: Record<string, string>;
}

/**
 * The argv that runs `argv` inside a lab host: its network, mount, UTS and PID namespaces, with a
 * clean environment (as a login on that host would have), optionally as another user.
 */
export function enterArgv(
  layout: Layout,
  name: string,
  host: HostId,
  argv: readonly string[],
  options: EnterOptions = {},
): string[] {
  const user = options.user ?? "root";
  const home = user === "root" ? "/root" : `/home/${user}`;
  const env = {
    PATH: HOST_PATH,
    HOME: home,
    USER: user,
    LOGNAME: user,
    LANG: "C.UTF-8",
    ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
    ...options.env,
  };
  return [
    "nsenter",
    `--net=${netnsPath(netnsName(name, host))}`,
    `--mount=${layout.nsFile(host, "mnt")}`,
    `--uts=${layout.nsFile(host, "uts")}`,
    `--pid=${layout.nsFile(host, "pid")}`,
    `--wd=${options.cwd ?? "/"}`,
    "--",
    "/usr/bin/env",
    "-i",
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    ...(user === "root" ? [] : ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", "--"]),
    ...argv,
  ];
}

export async function netnsExists(netns: string): Promise<boolean> {
  const result = await run(["ip", "netns", "list"]);
  return result.stdout.split("\n").some((line) => line.split(" ")[0] === netns);
}

export async function addNetns(netns: string): Promise<void> {
  if (await netnsExists(netns)) return;
  await run(["ip", "netns", "add", netns]);
  // Nothing in the lab speaks IPv6: no link-local addresses appear anywhere, nothing forwards.
  await inNetns(netns, [
    "sysctl",
    "-q",
    "-w",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv4.ip_forward=0",
  ]);
  await run(["ip", "-n", netns, "link", "set", "lo", "up"]);
}

/** Runs a command in a network namespace only (the root namespace's filesystem and processes). */
export function inNetns(netns: string, argv: readonly string[], timeout = 30_000) {
  return run(["nsenter", `--net=${netnsPath(netns)}`, "--", ...argv], { timeout });
}

/**
 * Gives a host persistent PID, mount and UTS namespaces, bound to files in the instance's ns dir,
 * with a reaper as PID 1. The mount namespace starts as a private copy of the root namespace's;
 * the host's setup script then shapes it.
 */
export async function createHostNamespaces(layout: Layout, name: string, host: HostId): Promise<void> {
  const files = (["pid", "mnt", "uts"] as const).map((kind) => layout.nsFile(host, kind));
  for (const file of files) writeFileSync(file, "");
  const [pidFile, mntFile, utsFile] = files as [string, string, string];
  const child = spawn(
    "nsenter",
    [
      `--net=${netnsPath(netnsName(name, host))}`,
      "--",
      "unshare",
      `--pid=${pidFile}`,
      `--mount=${mntFile}`,
      `--uts=${utsFile}`,
      "--fork",
      "--mount-proc",
      "--propagation",
      "private",
      "--",
      SYSTEM_PYTHON,
      INIT_SCRIPT,
    ],
    { detached: true, stdio: "ignore" },
  );
  child.unref();
  await waitFor(`the namespaces of ${host}`, async () => {
    const probe = await tryRun(enterArgv(layout, name, host, ["true"]), { timeout: 5_000 });
    return probe.code === 0 ? true : undefined;
  });
}

/**
 * unshare can only bind namespace files on a mount that is not shared: gives the ns dir a private
 * mount of its own. Call once, before creating hosts (not concurrently).
 */
export async function ensurePrivateNsDir(layout: Layout): Promise<void> {
  mkdirSync(layout.nsDir, { recursive: true });
  const mounted = await tryRun(["mountpoint", "-q", layout.nsDir]);
  if (mounted.code !== 0) {
    await run(["mount", "--bind", layout.nsDir, layout.nsDir]);
    await run(["mount", "--make-private", layout.nsDir]);
  }
}

/** Every process whose network namespace is `netns`, by pid in the root namespace. */
export async function netnsPids(netns: string): Promise<number[]> {
  const result = await tryRun(["ip", "netns", "pids", netns]);
  if (result.code !== 0) return [];
  return result.stdout
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * SIGKILLs everything in the namespace until nothing is left. A host's PID 1 takes its whole PID
 * namespace along. The `unshare` that started it is spared for a moment so that it reaps that PID 1
 * and exits by itself: killed first, it would leave PID 1 a zombie of the machine's init, still
 * holding the host's PID namespace until that init gets round to reaping it.
 */
export async function killNetns(netns: string): Promise<void> {
  const started = Date.now();
  await waitFor(
    `every process in ${netns} to exit`,
    async () => {
      const pids = await netnsPids(netns);
      const spareLaunchers = Date.now() - started < 3_000;
      for (const pid of pids) {
        if (spareLaunchers && commandName(pid) === "unshare") continue;
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      return pids.length === 0 ? true : undefined;
    },
    { timeout: 15_000, interval: 100 },
  );
}

/**
 * Removes every trace of an instance: its processes, namespace files, network namespaces, the
 * root namespace's veth end, and its run dir. Works from whatever is left, lab.json or not.
 */
export async function destroyInstance(layout: Layout, name: string): Promise<void> {
  const listed = await run(["ip", "netns", "list"]);
  const pattern = new RegExp(`^${name}-(br|ctl|node[0-9]+)$`);
  const namespaces = listed.stdout
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((netns) => pattern.test(netns));
  for (const netns of namespaces) await killNetns(netns);
  await unmountUnder(layout.runDir);
  for (const netns of namespaces) await run(["ip", "netns", "del", netns]);
  // The root end of the controller's veth goes with its namespace, but the kernel removes it a
  // moment later: it may still show and then be gone before our delete.
  const rootLink = await tryRun(["ip", "link", "show", "dev", `${name}-ll`]);
  if (rootLink.code === 0) {
    const deleted = await tryRun(["ip", "link", "del", `${name}-ll`]);
    if (deleted.code !== 0 && !/Cannot find device/.test(deleted.stderr))
      throw new Error(`ip link del ${name}-ll failed: ${deleted.stderr.trim()}`);
  }
  rmSync(layout.runDir, { recursive: true, force: true });
}

/** Unmounts everything mounted at or under `dir` in the root namespace, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const result = await run(["findmnt", "-rn", "-o", "TARGET"]);
  const targets = result.stdout
    .split("\n")
    .map(unescapeMountPath)
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const target of targets) {
    const umount = await tryRun(["umount", target]);
    if (umount.code !== 0) await run(["umount", "-l", target]);
  }
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\x([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Names of instances that have a run dir. */
export function listRunDirs(base: string): string[] {
  try {
    return readdirSync(base, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}
