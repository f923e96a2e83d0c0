import { spawn } from "node:child_process";
import { copyFileSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SimulatorClient } from "../simulator/client.js";
import { startMosquitto, stopMosquitto } from "./controller.js";
import { pythonWrapper, RC_SERVICE, SERVICE } from "./files.js";
import {
  type HostExec,
  nodeHostKeyFingerprint,
  pidfileAlive,
  SSHD_PIDFILE,
  sshdStart,
  stopPidfile,
} from "./hosts.js";
import { newKeyPair } from "./keys.js";
import type { Layout } from "./layout.js";
import { netnsPath, SYSTEM_PYTHON } from "./namespaces.js";
import { type HostId, isNodeId, netnsName } from "./naming.js";
import { applyNetem, clearNetem, linkIsUp, NETEM_QUEUE, setLink } from "./network.js";
import type { ActiveFault, LabInfo } from "./state.js";
import { setToolFault, type ToolFaultOptions, toolFaultOf } from "./tool-fault.js";

const here = dirname(fileURLToPath(import.meta.url));
const DELAY_HELPER = join(here, "netem-delay.py");

/** Each fault and the kind that undoes it. */
export const FAULTS = {
  "kill-zigbee2mqtt": {
    undo: "start-zigbee2mqtt",
    hosts: "nodes",
    help: "SIGKILL zigbee2mqtt (the pidfile stays: status says crashed)",
  },
  "start-zigbee2mqtt": {
    undo: null,
    hosts: "nodes",
    help: "start zigbee2mqtt again after a kill (zap + start)",
  },
  "stop-sshd": {
    undo: "start-sshd",
    hosts: "nodes",
    help: "stop the node's sshd (open sessions survive, as with OpenRC)",
  },
  "start-sshd": { undo: null, hosts: "nodes", help: "start the node's sshd" },
  "cut-link": {
    undo: "restore-link",
    hosts: "any",
    help: "pull the host's network cable (its processes keep running)",
  },
  "restore-link": { undo: null, hosts: "any", help: "plug the cable back in" },
  netem: {
    undo: "netem --clear",
    hosts: "any",
    help: "--loss PERCENT (each direction) and/or --delay MS (outgoing); --clear",
  },
  "fill-disk": {
    undo: "free-disk",
    hosts: "nodes",
    help: "fill the tmpfs of the data dir (default) or of home: fill-disk NODE [data|home]",
  },
  "free-disk": { undo: null, hosts: "nodes", help: "remove what fill-disk wrote (data, home or both)" },
  "change-host-key": {
    undo: "restore-host-key",
    hosts: "nodes",
    help: "give the node's sshd a new host key and restart it",
  },
  "restore-host-key": {
    undo: null,
    hosts: "nodes",
    help: "put the host key from `up` back and restart sshd",
  },
  unplug: { undo: "replug", hosts: "nodes", help: "the dongle stops answering and /dev/ttyUSB0 disappears" },
  replug: { undo: null, hosts: "nodes", help: "the dongle is back (same NVRAM)" },
  "power-cycle-dongle": { undo: null, hosts: "nodes", help: "the dongle resets, keeping its NVRAM" },
  "tool-fault": {
    undo: "tool-fault --clear",
    hosts: "nodes",
    help: "a zigpy-znp tool fails, corrupts its output or hangs: --tool nvram_write --mode fail|corrupt|hang [--times N]; --clear",
  },
  "break-tools": {
    undo: "fix-tools",
    hosts: "nodes",
    help: "the node's python3 lacks zigpy-znp (`python3 -m zigpy_znp.tools.X` fails as if never installed)",
  },
  "fix-tools": { undo: null, hosts: "nodes", help: "the node's python3 is the zigpy-znp virtualenv's again" },
  "skew-clock": {
    undo: "fix-clock",
    hosts: "nodes",
    help: "the node's clock reads --seconds N off (its `date`: the machine's clock is shared by all hosts)",
  },
  "fix-clock": { undo: null, hosts: "nodes", help: "the node's clock reads right again" },
  "stop-mqtt": { undo: "start-mqtt", hosts: "controller", help: "stop the controller's Mosquitto" },
  "start-mqtt": { undo: null, hosts: "controller", help: "start the controller's Mosquitto" },
} as const;

export type FaultKind = keyof typeof FAULTS;

export function isFaultKind(kind: string): kind is FaultKind {
  return Object.hasOwn(FAULTS, kind);
}

export type Disk = "data" | "home";

export interface FaultOptions extends Omit<ToolFaultOptions, "clear"> {
  /** netem: percent of packets lost in each direction. */
  loss?: number;
  /** netem: milliseconds added to every packet the host sends. */
  delay?: number;
  /** netem: remove loss and delay; tool-fault: remove the tool fault. */
  clear?: boolean;
  /** fill-disk / free-disk: which tmpfs (free-disk without one frees both). */
  disk?: Disk;
  /** skew-clock: how far off the node's clock reads (negative: behind). */
  seconds?: number;
}

export interface FaultContext {
  name: string;
  layout: Layout;
  info: () => LabInfo;
  update: (change: (info: LabInfo) => void) => LabInfo;
  exec: HostExec;
}

const DISK_MOUNTS: Record<Disk, string> = { data: "/opt/zigbee2mqtt", home: "/home" };
const FILLER = ".lab-disk-filler";
const Z2M_PIDFILE = `/run/${SERVICE}.pid`;

export async function applyFault(
  ctx: FaultContext,
  kind: FaultKind,
  host: HostId,
  options: FaultOptions = {},
) {
  const spec = FAULTS[kind];
  if (spec.hosts === "nodes" && !isNodeId(host)) throw new Error(`${kind} applies to nodes, not to ${host}`);
  if (spec.hosts === "controller" && host !== "controller")
    throw new Error(`${kind} applies to the controller only`);
  const exec = ctx.exec;
  switch (kind) {
    case "kill-zigbee2mqtt": {
      const status = await exec(host, [RC_SERVICE, SERVICE, "status"]);
      if (status.code !== 0)
        throw new Error(`zigbee2mqtt is not running on ${host}:${status.stdout.trim().replace(/^/, " ")}`);
      const killed = await exec(host, [
        "/bin/sh",
        "-c",
        'pid=$(cat "$1") && kill -KILL "$pid"',
        "sh",
        Z2M_PIDFILE,
      ]);
      if (killed.code !== 0)
        throw new Error(`could not kill zigbee2mqtt on ${host}: ${killed.stderr.trim()}`);
      return;
    }
    case "start-zigbee2mqtt": {
      const status = await exec(host, [RC_SERVICE, SERVICE, "status"]);
      if (status.code === 0) return;
      if (status.code === 32) await mustExec(exec, host, [RC_SERVICE, SERVICE, "zap"]);
      await mustExec(exec, host, [RC_SERVICE, SERVICE, "start"]);
      return;
    }
    case "stop-sshd":
      if (await pidfileAlive(exec, host, SSHD_PIDFILE)) await stopPidfile(exec, host, SSHD_PIDFILE, "sshd");
      return;
    case "start-sshd":
      if (!(await pidfileAlive(exec, host, SSHD_PIDFILE))) await sshdStart(exec, host);
      return;
    case "cut-link":
      return setLink(ctx.name, host, false);
    case "restore-link":
      return setLink(ctx.name, host, true);
    case "netem":
      return netem(ctx, host, options);
    case "fill-disk":
      return fillDisk(exec, host, options.disk ?? "data");
    case "free-disk": {
      const disks: Disk[] = options.disk ? [options.disk] : ["data", "home"];
      for (const disk of disks) await mustExec(exec, host, ["rm", "-f", `${DISK_MOUNTS[disk]}/${FILLER}`]);
      return;
    }
    case "change-host-key": {
      await newKeyPair(ctx.layout.node(host).hostKey, `root@${host}`);
      return restartSshdWithKey(ctx, host);
    }
    case "restore-host-key": {
      const dir = ctx.layout.node(host);
      copyFileSync(dir.originalHostKey, dir.hostKey);
      copyFileSync(`${dir.originalHostKey}.pub`, `${dir.hostKey}.pub`);
      return restartSshdWithKey(ctx, host);
    }
    case "unplug":
    case "replug":
    case "power-cycle-dongle": {
      const dongle = new SimulatorClient(ctx.info().nodes[host]!.simulator.control);
      if (kind === "unplug") await dongle.unplug();
      else if (kind === "replug") await dongle.replug();
      else await dongle.powerCycle();
      return;
    }
    case "break-tools":
    case "fix-tools":
      return setPythonWrapper(ctx, host, kind === "break-tools");
    case "tool-fault":
      return setToolFault(ctx.layout, ctx.info().znp.venv, host, options);
    case "skew-clock":
    case "fix-clock":
      return setClockSkew(ctx, host, kind === "skew-clock" ? options.seconds : undefined);
    case "stop-mqtt":
      return stopMosquitto(exec, ctx.layout);
    case "start-mqtt": {
      const info = ctx.info();
      return startMosquitto(exec, ctx.layout, {
        lab: info.controller.address,
        linkLocal: info.linkLocal.controller,
      });
    }
  }
}

async function mustExec(exec: HostExec, host: HostId, argv: string[]) {
  const result = await exec(host, argv);
  if (result.code !== 0) {
    throw new Error(
      `${argv.join(" ")} failed on ${host} (${result.code}): ${(result.stderr || result.stdout).trim()}`,
    );
  }
  return result;
}

async function restartSshdWithKey(ctx: FaultContext, host: HostId) {
  if (await pidfileAlive(ctx.exec, host, SSHD_PIDFILE))
    await stopPidfile(ctx.exec, host, SSHD_PIDFILE, "sshd");
  await sshdStart(ctx.exec, host);
  const current = await nodeHostKeyFingerprint(ctx.layout, host);
  ctx.update((info) => {
    info.nodes[host]!.ssh.hostKeyFingerprint = current;
  });
}

async function fillDisk(exec: HostExec, host: HostId, disk: Disk) {
  if (!Object.hasOwn(DISK_MOUNTS, disk)) throw new Error(`unknown disk ${disk} (data or home)`);
  const mount = DISK_MOUNTS[disk];
  // Big blocks first, then small ones until not one more byte fits.
  await exec(host, [
    "/bin/sh",
    "-c",
    'f=$1/.lab-disk-filler; dd if=/dev/zero of="$f" bs=1M conv=notrunc oflag=append 2>/dev/null; dd if=/dev/zero of="$f" bs=512 conv=notrunc oflag=append 2>/dev/null; sync; true',
    "sh",
    mount,
  ]);
  const free = await mustExec(exec, host, ["df", "-B1", "--output=avail", mount]);
  const avail = Number(free.stdout.trim().split("\n").pop());
  if (!(avail < 4096)) throw new Error(`fill-disk: ${mount} on ${host} still has ${avail} bytes free`);
}

/**
 * /usr/local/bin/python3 on a node (its host dir's bin/, bound read-only into the node) is a
 * wrapper around the zigpy-znp virtualenv's python. Broken, it runs the system python, which has
 * no zigpy_znp: `python3 -m zigpy_znp.tools.X` fails with the real ModuleNotFoundError, as on
 * a node where the tools were never installed. Written with a rename: a running python3 keeps its file.
 */
function setPythonWrapper(ctx: FaultContext, host: HostId, broken: boolean) {
  const path = join(ctx.layout.node(host).bin, "python3");
  const content = broken ? BROKEN_PYTHON : pythonWrapper(ctx.info().znp.venv);
  writeFileSync(`${path}.lab-tmp`, content, { mode: 0o755 });
  renameSync(`${path}.lab-tmp`, path);
}

const BROKEN_PYTHON = `#!/bin/sh\n# python3 WITHOUT zigpy-znp (zigbee2mqtt-ha lab fault break-tools; undo: fix-tools)\nexec ${SYSTEM_PYTHON} "$@"\n`;

/**
 * A node's clock cannot be set on its own: every lab host shares the machine's realtime clock
 * (time namespaces offset only the monotonic clocks). What reads a node's clock, over SSH, is its
 * `date`: the fault puts a `date` in the node's /usr/local/bin, first on its PATH, that answers
 * for a clock N seconds off (nanoseconds kept, so GNU `date +%s %N` stays fine-grained).
 */
function setClockSkew(ctx: FaultContext, host: HostId, seconds: number | undefined) {
  const path = join(ctx.layout.node(host).bin, "date");
  if (seconds === undefined) {
    rmSync(path, { force: true });
    return;
  }
  if (!Number.isInteger(seconds) || seconds === 0 || Math.abs(seconds) > 10 * 365 * 86_400)
    throw new Error(`skew-clock: --seconds must be a non-zero whole number of seconds, not ${seconds}`);
  const content = `#!/bin/sh
# ${SKEWED_DATE_MARK} ${seconds} s (zigbee2mqtt-ha lab fault skew-clock; undo: fix-clock)
now=$(/bin/date +%s.%N)
exec /bin/date -d "@$((\${now%.*} + ${seconds})).\${now#*.}" "$@"
`;
  writeFileSync(`${path}.lab-tmp`, content, { mode: 0o755 });
  renameSync(`${path}.lab-tmp`, path);
}

const SKEWED_DATE_MARK = "date of a clock off by";

async function netem(ctx: FaultContext, host: HostId, options: FaultOptions) {
  const current = ctx.info().netem?.[host];
  if (current?.helperPid) stopDelayHelper(current.helperPid);
  if (options.clear) {
    await clearNetem(ctx.name, host);
    ctx.update((info) => {
      delete info.netem?.[host];
    });
    return;
  }
  const loss = options.loss ?? 0;
  const delay = options.delay ?? 0;
  if (!(loss >= 0 && loss <= 100))
    throw new Error(`netem: --loss must be a percentage 0-100, not ${options.loss}`);
  if (!(Number.isInteger(delay) && delay >= 0 && delay <= 60_000)) {
    throw new Error(`netem: --delay must be whole milliseconds 0-60000, not ${options.delay}`);
  }
  if (loss === 0 && delay === 0) throw new Error("netem: give --loss and/or --delay, or --clear");
  await applyNetem(ctx.name, host, { loss, delay });
  const helperPid = delay > 0 ? startDelayHelper(ctx, host, delay) : undefined;
  ctx.update((info) => {
    info.netem = { ...info.netem, [host]: { loss, delay, ...(helperPid ? { helperPid } : {}) } };
  });
}

/** The delay helper serves the node's NFQUEUE from its network namespace only (it is no process of the node's). */
function startDelayHelper(ctx: FaultContext, host: HostId, delay: number): number {
  const log = openSync(join(ctx.layout.runDir, `netem-${host}.log`), "a");
  const child = spawn(
    "nsenter",
    [
      `--net=${netnsPath(netnsName(ctx.name, host))}`,
      "--",
      SYSTEM_PYTHON,
      DELAY_HELPER,
      String(NETEM_QUEUE),
      String(delay),
    ],
    { detached: true, stdio: ["ignore", log, log] },
  );
  child.unref();
  if (child.pid === undefined) throw new Error("netem: the delay helper did not start");
  return child.pid;
}

function stopDelayHelper(pid: number) {
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("netem-delay.py")) process.kill(pid, "SIGTERM");
  } catch {
    // already gone
  }
}

/** What is wrong on purpose right now, observed on the hosts rather than remembered. */
export async function activeFaults(ctx: FaultContext): Promise<ActiveFault[]> {
  const info = ctx.info();
  const faults: ActiveFault[] = [];
  const add = (host: string, kind: string, detail?: string) =>
    faults.push({ host, kind, ...(detail ? { detail } : {}) });
  for (const host of ["controller", ...info.nodeIds] as HostId[]) {
    if (!(await linkIsUp(ctx.name, host))) add(host, "cut-link");
    const netemNow = info.netem?.[host];
    if (netemNow) add(host, "netem", `loss ${netemNow.loss}%, delay ${netemNow.delay} ms`);
  }
  if (!(await pidfileAlive(ctx.exec, "controller", ctx.layout.controller.mosquittoPid)))
    add("controller", "stop-mqtt");
  for (const node of info.nodeIds as HostId[]) {
    if (!(await pidfileAlive(ctx.exec, node, SSHD_PIDFILE))) add(node, "stop-sshd");
    const n = info.nodes[node]!;
    if (n.ssh.hostKeyFingerprint !== n.ssh.originalHostKeyFingerprint)
      add(node, "change-host-key", n.ssh.hostKeyFingerprint);
    for (const disk of ["data", "home"] as const) {
      const filler = await ctx.exec(node, ["test", "-e", `${DISK_MOUNTS[disk]}/${FILLER}`]);
      if (filler.code === 0) add(node, "fill-disk", disk);
    }
    const python = join(ctx.layout.node(node).bin, "python3");
    if (existsSync(python) && readFileSync(python, "utf8") === BROKEN_PYTHON) add(node, "break-tools");
    const date = join(ctx.layout.node(node).bin, "date");
    if (existsSync(date)) {
      const skew = new RegExp(`${SKEWED_DATE_MARK} (-?\\d+) s`).exec(readFileSync(date, "utf8"));
      add(node, "skew-clock", skew ? `${skew[1]} s` : undefined);
    }
    const toolFault = toolFaultOf(ctx.layout, node);
    if (toolFault) add(node, "tool-fault", toolFault);
    if (existsSync(n.simulator.control)) {
      try {
        const status = await new SimulatorClient(n.simulator.control, 2_000).status();
        if (status.unplugged) add(node, "unplug");
      } catch {
        add(node, "dongle-unreachable", "the simulator does not answer");
      }
    }
  }
  return faults;
}
