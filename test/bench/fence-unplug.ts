/**
 * The chaos run's failover.fence_command: a smart plug for the lab. It cuts the power of the
 * fenced node's dongle (the simulator's unplug), so that a node that cannot be reached over SSH
 * stops being a coordinator on the air. The sidecar runs it with $Z2MHA_NODE set.
 *   node --import tsx test/bench/fence-unplug.ts LAB
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RUN_BASE } from "../lab/host/layout.js";
import { SimulatorClient } from "../lab/simulator/client.js";

const lab = process.argv[2];
const node = process.env.Z2MHA_NODE;
if (!lab || !node) {
  process.stderr.write("usage: fence-unplug.ts LAB (with $Z2MHA_NODE)\n");
  process.exit(2);
}
const info = JSON.parse(readFileSync(join(RUN_BASE, lab, "lab.json"), "utf8")) as {
  nodes: Record<string, { simulator: { control: string } }>;
};
const control = info.nodes[node]?.simulator.control;
if (!control) {
  process.stderr.write(`no node ${node} in lab ${lab}\n`);
  process.exit(2);
}
const status = await new SimulatorClient(control).unplug();
process.stdout.write(`${node}'s dongle unplugged (state ${status.state})\n`);
