/**
 * The reference: the prototype's switchover (activeZigbee2mqttN.sh, /work/shared/REFERENCE.md §1)
 * run from the controller over ssh, one command after the other, no checks: stop the old active
 * twice and the new one twice (the "ghost error" workaround), nvram_read on the old active, copy
 * the dump across, nvram_reset and nvram_write on the new one, copy the data dir from the aux dir
 * the prototype's 5-minute sync keeps, start. The prototype's final `reboot` of the old node comes
 * after the start and is left out (it is outside the outage and would take the node away).
 *
 * The lab trusts no node-to-node ssh by default, so the copies go through the controller (one ssh
 * to read, one to write) where the prototype rsyncs node to node; the aux dir is staged by the
 * bench before the run, as the prototype's cron would have.
 */
import type { HostId, Lab } from "../lab/world.js";
import type { OutageWatcher } from "./outage.js";

const WORK = "/home/zigbee/proto";
const AUX = "/home/zigbee/proto-aux";
const DUMP = `${WORK}/backup_coordinator_nvram.json`;
const DATA = "/opt/zigbee2mqtt/data";

export interface ReferenceRun {
  outage: number | undefined;
  steps: [string, number][];
  /** Commands that did not exit 0 (the prototype goes on regardless). */
  failures: string[];
  /** The old active's dongle still runs the network after the switchover (nothing parked it). */
  oldOnAir: boolean;
}

/** The prototype's cron sync into the new active's aux dir, with its own configuration.yaml (the sed). */
export async function stageAux(lab: Lab, from: HostId, to: HostId): Promise<void> {
  const tar = await lab.execOk(
    from,
    ["sh", "-c", 'tar -C "$1" --exclude=./log -cf - . | base64 -w0', "sh", DATA],
    { user: "zigbee" },
  );
  await lab.execOk(
    to,
    ["sh", "-c", 'rm -rf "$1" "$2" && mkdir -p "$1" "$2" && base64 -d | tar -C "$1" -xf -', "sh", AUX, WORK],
    { user: "zigbee", input: tar.stdout },
  );
  await lab.writeFile(to, `${AUX}/configuration.yaml`, lab.configuration(to), { user: "zigbee" });
  await lab.execOk(from, ["mkdir", "-p", WORK], { user: "zigbee" });
}

export async function prototypeSwitchover(
  lab: Lab,
  from: HostId,
  to: HostId,
  watcher: OutageWatcher,
): Promise<ReferenceRun> {
  const steps: [string, number][] = [];
  const failures: string[] = [];
  // As our sidecar runs them (docs/nodes.md): as the SSH user, in dialout, without sudo (the
  // node's sudoers allow the service commands only).
  const tools = ["python3", "-m"];
  const step = async (name: string, node: HostId, argv: string[], input?: string) => {
    const t = Date.now();
    const result = await lab.ssh(node, argv, { timeout: 600_000, ...(input !== undefined ? { input } : {}) });
    steps.push([name, Date.now() - t]);
    if (result.code !== 0) failures.push(`${name}: exit ${result.code} ${result.stderr.slice(-200)}`);
    return result;
  };
  watcher.reset();
  const started = Date.now();
  await step("stop A", from, ["sudo", "rc-service", "zigbee2mqtt", "stop"]);
  await step("stop A again", from, ["sudo", "rc-service", "zigbee2mqtt", "stop"]);
  await step("stop B", to, ["sudo", "rc-service", "zigbee2mqtt", "stop"]);
  await step("stop B again", to, ["sudo", "rc-service", "zigbee2mqtt", "stop"]);
  await step("nvram_read A", from, [...tools, "zigpy_znp.tools.nvram_read", "/dev/ttyUSB0", "-o", DUMP]);
  const t = Date.now();
  const dump = await lab.ssh(from, ["cat", DUMP]);
  await lab.ssh(to, ["sh", "-c", 'cat >"$1"', "sh", DUMP], { input: dump.stdout });
  steps.push(["copy the dump to B", Date.now() - t]);
  await step("nvram_reset B", to, [...tools, "zigpy_znp.tools.nvram_reset", "/dev/ttyUSB0"]);
  await step("nvram_write B", to, [...tools, "zigpy_znp.tools.nvram_write", "/dev/ttyUSB0", "-i", DUMP]);
  await step("data dir to B", to, ["rsync", "-rlptc", "--exclude", "log", `${AUX}/`, `${DATA}/`]);
  await step("start B", to, ["sudo", "rc-service", "zigbee2mqtt", "start"]);
  const online = Date.now();
  await lab.waitForZigbee2mqtt(to, { timeout: 300_000 });
  steps.push(["wait for B online", Date.now() - online]);
  steps.push(["total", Date.now() - started]);
  const old = await lab.simulator(from).status();
  return { outage: watcher.take(), steps, failures, oldOnAir: old.state === "started" };
}
