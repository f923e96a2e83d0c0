import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkPlainPath,
  groupWithZigbee,
  type HostsEntry,
  hostsFile,
  passwdWithZigbee,
  pythonWrapper,
  SERVICE,
  shadowFor,
  sshdConfig,
  zigbee2mqttInitScript,
} from "./files.js";
import { ensureKeyPair, fingerprint, publicKeyLine } from "./keys.js";
import type { Layout } from "./layout.js";
import { enterArgv, SYSTEM_PYTHON } from "./namespaces.js";
import type { HostId } from "./naming.js";
import { type RunResult, run, waitFor } from "./run.js";

const here = dirname(fileURLToPath(import.meta.url));
const NODE_ROOT_SCRIPT = join(here, "node-root.sh");
const CONTROLLER_ROOT_SCRIPT = join(here, "controller-root.sh");
/** OpenRC stand-ins, put where Alpine has them (/sbin = /usr/sbin) by the node's overlay. */
const OPENRC_STAND_INS = ["rc-service", "rc-update"].map((name) => join(here, "..", "node", name));
/** The repository: the nodes' simulators run from it. */
const REPO_DIR = join(here, "..", "..", "..");

/** tmpfs sizes: small, so `fill-disk` fills them in an instant. */
export const DATA_TMPFS_SIZE = "64m";
export const HOME_TMPFS_SIZE = "32m";

/** A uid/gid for zigbee that no account of the machine has (files on the nodes' tmpfs carry it). */
export function freeUserId(): number {
  const used = new Set<number>();
  for (const file of ["/etc/passwd", "/etc/group"]) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const id = Number(line.split(":")[2]);
      if (Number.isInteger(id)) used.add(id);
    }
  }
  let id = 2000;
  while (used.has(id)) id++;
  return id;
}

export interface NodePlan {
  id: string;
  hosts: HostsEntry[];
  uid: number;
  z2mIndex: string;
  nodeBinary: string;
  znpVenv: string;
}

/** Writes a node's /etc files, /usr/local dirs and home seed under its host dir, and its keys. */
export async function writeNodeFiles(layout: Layout, plan: NodePlan): Promise<void> {
  const dir = layout.node(plan.id);
  for (const sub of [dir.etc, join(dir.etc, "sudoers.d"), join(dir.etc, "ssh"), join(dir.etc, "init.d")]) {
    mkdirSync(sub, { recursive: true });
  }
  mkdirSync(dir.bin, { recursive: true });
  mkdirSync(dir.sbin, { recursive: true });
  mkdirSync(dir.sbinWork, { recursive: true });
  mkdirSync(dir.faults, { recursive: true, mode: 0o755 });
  mkdirSync(join(dir.home, ".ssh"), { recursive: true, mode: 0o700 });
  mkdirSync(dir.lab, { recursive: true, mode: 0o700 });

  const passwd = passwdWithZigbee(readFileSync("/etc/passwd", "utf8"), plan.uid, plan.uid);
  writeFileSync(join(dir.etc, "passwd"), passwd, { mode: 0o644 });
  writeFileSync(join(dir.etc, "group"), groupWithZigbee(readFileSync("/etc/group", "utf8"), plan.uid), {
    mode: 0o644,
  });
  writeFileSync(join(dir.etc, "shadow"), shadowFor(passwd), { mode: 0o640 });
  writeFileSync(join(dir.etc, "hosts"), hostsFile(plan.hosts), { mode: 0o644 });
  writeFileSync(join(dir.etc, "hostname"), `${plan.id}\n`, { mode: 0o644 });
  writeFileSync(join(dir.etc, "ssh", "sshd_config"), sshdConfig(plan.id), { mode: 0o644 });
  copyFileSync("/etc/ssh/ssh_config", join(dir.etc, "ssh", "ssh_config"));
  if (existsSync("/etc/ssh/moduli")) copyFileSync("/etc/ssh/moduli", join(dir.etc, "ssh", "moduli"));
  writeFileSync(
    join(dir.etc, "init.d", SERVICE),
    zigbee2mqttInitScript(plan.id, plan.nodeBinary, checkPlainPath(plan.z2mIndex)),
    { mode: 0o755 },
  );
  writeFileSync(join(dir.bin, "python3"), pythonWrapper(plan.znpVenv), { mode: 0o755 });
  for (const script of OPENRC_STAND_INS) {
    const target = join(dir.sbin, basename(script));
    copyFileSync(script, target);
    chmodSync(target, 0o755);
  }

  await ensureKeyPair(dir.hostKey, `root@${plan.id}`);
  if (!existsSync(dir.originalHostKey)) {
    copyFileSync(dir.hostKey, dir.originalHostKey);
    copyFileSync(`${dir.hostKey}.pub`, `${dir.originalHostKey}.pub`);
  }
  await ensureKeyPair(dir.zigbeeKey, `zigbee@${plan.id}`);
  copyFileSync(dir.zigbeeKey, join(dir.home, ".ssh", "id_ed25519"));
  copyFileSync(`${dir.zigbeeKey}.pub`, join(dir.home, ".ssh", "id_ed25519.pub"));
  chmodSync(join(dir.home, ".ssh", "id_ed25519"), 0o600);
}

/**
 * The zigbee user's authorized_keys (the controller's key; the other nodes' keys too when peer ssh
 * is on) and known_hosts (every node's host key as of `up`, by name and address).
 */
export function sshTrustFiles(
  layout: Layout,
  nodes: { id: string; address: string }[],
  self: string,
  peerSsh: boolean,
): { authorizedKeys: string; knownHosts: string } {
  // `restrict` as docs/nodes.md has it: no forwarding, no terminal; commands and SFTP work.
  const keys = [`restrict ${publicKeyLine(`${layout.privateKey}.pub`)}`];
  if (peerSsh) {
    for (const node of nodes) {
      if (node.id !== self) keys.push(publicKeyLine(`${layout.node(node.id).zigbeeKey}.pub`));
    }
  }
  return { authorizedKeys: `${keys.join("\n")}\n`, knownHosts: knownHosts(layout, nodes) };
}

export function knownHosts(layout: Layout, nodes: { id: string; address: string }[]): string {
  return nodes
    .map((node) => {
      const [type, key] = publicKeyLine(`${layout.node(node.id).originalHostKey}.pub`).split(" ");
      return `${node.id},${node.address} ${type} ${key}\n`;
    })
    .join("");
}

export async function nodeHostKeyFingerprint(layout: Layout, node: string): Promise<string> {
  return fingerprint(`${layout.node(node).hostKey}.pub`);
}

export function writeControllerFiles(
  layout: Layout,
  hosts: HostsEntry[],
  nodes: { id: string; address: string }[],
) {
  mkdirSync(layout.controller.etc, { recursive: true });
  mkdirSync(layout.controller.sidecarDir, { recursive: true });
  writeFileSync(join(layout.controller.etc, "hosts"), hostsFile(hosts), { mode: 0o644 });
  writeFileSync(join(layout.controller.etc, "hostname"), "controller\n", { mode: 0o644 });
  writeFileSync(layout.controller.knownHosts, knownHosts(layout, nodes), { mode: 0o644 });
}

/** Runs the host's filesystem setup inside its fresh mount namespace. */
export async function shapeHostFilesystem(
  layout: Layout,
  name: string,
  host: HostId,
  opts: { uid: number; z2mDir: string },
): Promise<void> {
  const argv =
    host === "controller"
      ? ["/bin/bash", CONTROLLER_ROOT_SCRIPT, layout.controller.dir, "controller"]
      : [
          "/bin/bash",
          NODE_ROOT_SCRIPT,
          layout.node(host).dir,
          host,
          String(opts.uid),
          String(opts.uid),
          DATA_TMPFS_SIZE,
          HOME_TMPFS_SIZE,
          opts.z2mDir,
          REPO_DIR,
        ];
  await run(enterArgv(layout, name, host, argv), { timeout: 30_000 });
}

/** Exec in a host, collecting output; never throws for a non-zero exit. */
export type HostExec = (
  host: HostId,
  argv: readonly string[],
  options?: {
    user?: string;
    input?: string | Buffer;
    timeout?: number;
    cwd?: string;
    env?: Record<string, string>;
  },
) => Promise<RunResult>;

/**
 * Starts a foreground program as a daemon inside a host: own session, output appended to `log`, pid
 * (in the host's PID namespace) written to `pidfile`. Both paths are in the host's view.
 */
export function daemonArgv(log: string, pidfile: string, argv: readonly string[]): string[] {
  return [
    "/bin/sh",
    "-c",
    'log=$1 pidfile=$2; shift 2; setsid "$@" </dev/null >>"$log" 2>&1 & echo $! >"$pidfile"',
    "sh",
    log,
    pidfile,
    ...argv,
  ];
}

/** Whether the pid in `pidfile` (host view) is alive in that host. */
export async function pidfileAlive(exec: HostExec, host: HostId, pidfile: string): Promise<boolean> {
  const result = await exec(host, [
    "/bin/sh",
    "-c",
    'pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null',
    "sh",
    pidfile,
  ]);
  return result.code === 0;
}

/** Signals the pid in `pidfile` and waits until it is gone. */
export async function stopPidfile(
  exec: HostExec,
  host: HostId,
  pidfile: string,
  what: string,
): Promise<void> {
  await exec(host, ["/bin/sh", "-c", 'pid=$(cat "$1" 2>/dev/null) && kill -TERM "$pid"', "sh", pidfile]);
  await waitFor(`${what} on ${host} to stop`, async () =>
    (await pidfileAlive(exec, host, pidfile)) ? undefined : true,
  );
  await exec(host, ["rm", "-f", pidfile]);
}

/** Whether a TCP port accepts connections, tried from inside `from`. */
export async function tcpOpen(exec: HostExec, from: HostId, host: string, port: number): Promise<boolean> {
  const result = await exec(
    from,
    [
      SYSTEM_PYTHON,
      "-c",
      "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()",
      host,
      String(port),
    ],
    { timeout: 5_000 },
  );
  return result.code === 0;
}

export async function sshdStart(exec: HostExec, node: HostId): Promise<void> {
  const result = await exec(node, ["/usr/sbin/sshd", "-E", "/var/log/sshd.log"]);
  if (result.code !== 0) throw new Error(`sshd on ${node} did not start: ${result.stderr.trim()}`);
}

export const SSHD_PIDFILE = "/run/sshd.pid";
