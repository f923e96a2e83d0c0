import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SimulatorClient } from "../simulator/client.js";
import type { LinkMode } from "../simulator/link.js";
import { SERIAL_PORT } from "./files.js";
import { daemonArgv, type HostExec, pidfileAlive } from "./hosts.js";
import { NODE_LAB_DIR } from "./layout.js";
import type { DongleAdapter, HostId } from "./naming.js";
import { lastLines, waitFor } from "./run.js";

/** The simulated dongle's files, in the node's view (/run/lab is the node's lab dir). */
export const DONGLE = {
  state: `${NODE_LAB_DIR}/dongle-nvram.json`,
  control: `${NODE_LAB_DIR}/dongle.sock`,
  log: `${NODE_LAB_DIR}/dongle.log`,
  output: `${NODE_LAB_DIR}/dongle.out`,
  pid: `${NODE_LAB_DIR}/dongle.pid`,
};

/** The same files from the root namespace. */
export function dongleHostPaths(nodeLabDir: string) {
  const inRoot = (path: string) => join(nodeLabDir, path.slice(NODE_LAB_DIR.length + 1));
  return {
    state: inRoot(DONGLE.state),
    control: inRoot(DONGLE.control),
    log: inRoot(DONGLE.log),
    output: inRoot(DONGLE.output),
  };
}

export interface DongleStartOptions {
  repo: string;
  node: HostId;
  ieee: string;
  /** Root-namespace path of the node's lab dir. */
  nodeLabDir: string;
  /** "host:port" to also serve the dongle over TCP. */
  tcp?: string;
  /** Serial line timing (default instant). */
  link?: LinkMode;
  /** Which simulator: Z-Stack (default) or EmberZNet. */
  adapter?: DongleAdapter;
}

export function simulatorEntry(
  repo: string,
  adapter: DongleAdapter = "zstack",
): { tsx: string; main: string } {
  return {
    tsx: join(repo, "node_modules", "tsx", "dist", "loader.mjs"),
    main: join(repo, "test", "lab", adapter === "ember" ? "simulator-ember" : "simulator", "main.ts"),
  };
}

/**
 * Starts the node's simulated dongle inside the node (so /dev/ttyUSB0 is the node's own) unless it
 * runs, and waits until it answers on its control socket and its pty is there.
 */
export async function startDongle(exec: HostExec, options: DongleStartOptions): Promise<void> {
  const paths = dongleHostPaths(options.nodeLabDir);
  if (await pidfileAlive(exec, options.node, DONGLE.pid)) return;
  const entry = simulatorEntry(options.repo, options.adapter);
  for (const file of [entry.tsx, entry.main]) {
    if (!existsSync(file))
      throw new Error(`the coordinator simulator is missing: ${file} (see test/lab/simulator)`);
  }
  const argv = [
    process.execPath,
    "--import",
    pathToFileURL(entry.tsx).href,
    entry.main,
    "--state",
    DONGLE.state,
    options.adapter === "ember" ? "--eui64" : "--ieee",
    options.ieee,
    "--pty",
    SERIAL_PORT,
    "--pty-group",
    "dialout",
    "--control",
    DONGLE.control,
    "--log",
    DONGLE.log,
    ...(options.tcp ? ["--listen-tcp", options.tcp] : []),
    "--link",
    options.link ?? "instant",
  ];
  const started = await exec(options.node, daemonArgv(DONGLE.output, DONGLE.pid, argv));
  if (started.code !== 0)
    throw new Error(`the dongle simulator on ${options.node} did not start: ${started.stderr}`);
  await waitFor(
    `the dongle simulator on ${options.node}`,
    async () => {
      if (!(await pidfileAlive(exec, options.node, DONGLE.pid))) {
        throw new Error(`it exited: ${lastLines(paths.output)}`);
      }
      await new SimulatorClient(paths.control, 2_000).status();
      const pty = await exec(options.node, ["test", "-e", SERIAL_PORT]);
      return pty.code === 0 ? true : undefined;
    },
    { timeout: 30_000, interval: 250 },
  );
}
