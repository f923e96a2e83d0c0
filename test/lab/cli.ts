/**
 * `npm run lab -- <command>`: the lab from a shell.
 *
 *   up [--nodes N] [--link instant|realistic]   bring the lab up (idempotent); node1's zigbee2mqtt online
 *   link MODE [NODE...]       the dongles' serial line timing from their next host session on
 *   down                      take it down, leaving nothing behind
 *   status [--json]           hosts, services, dongles, active faults
 *   info                      lab.json (addresses, paths, keys, fingerprints)
 *   exec HOST [--user U] -- CMD...   run a command in controller, node1, node2, ...
 *   fault KIND HOST [...]     break something on purpose (see `faults`), or undo it
 *   faults                    the fault kinds
 *
 * --name NAME (or $Z2MHA_LAB_NAME) picks the instance; default z2mha.
 */
import { spawn } from "node:child_process";
import { Command, InvalidArgumentError, Option } from "commander";
import { FAULTS, type FaultOptions } from "./host/faults.js";
import { enterArgv } from "./host/namespaces.js";
import type { DongleAdapter, HostId } from "./host/naming.js";
import { LINK_MODES, type LinkMode } from "./simulator/link.js";
import { DEFAULT_LAB_NAME, Lab } from "./world.js";

// `npm run lab -- status | head` closes the pipe early: not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command()
  .name("lab")
  .description("the zigbee2mqtt-ha lab: a multi-host test world in network namespaces")
  .addOption(new Option("--name <name>", "lab instance").env("Z2MHA_LAB_NAME").default(DEFAULT_LAB_NAME))
  .enablePositionalOptions()
  .showHelpAfterError();

const labName = () => program.opts<{ name: string }>().name;

function linkMode(value: string): LinkMode {
  if (!(LINK_MODES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`must be one of ${LINK_MODES.join(", ")}`);
  return value as LinkMode;
}

function adapterOption(value: string): DongleAdapter | Record<string, DongleAdapter> {
  const isAdapter = (v: string): v is DongleAdapter => v === "zstack" || v === "ember";
  if (isAdapter(value)) return value;
  const perNode: Record<string, DongleAdapter> = {};
  for (const part of value.split(",")) {
    const [node, adapter] = part.split("=");
    if (!node || !adapter || !isAdapter(adapter))
      throw new InvalidArgumentError("must be zstack, ember, or node1=ember,node2=zstack");
    perNode[node] = adapter;
  }
  return perNode;
}

function number(what: string) {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed)) throw new InvalidArgumentError(`${what} must be a number`);
    return parsed;
  };
}

program
  .command("up")
  .description("bring the lab up, or make sure the one that is up is healthy")
  .option("--nodes <n>", "number of zigbee2mqtt nodes", number("--nodes"), 2)
  .option("--peer-ssh", "let the nodes' zigbee users ssh to each other (prototype style)")
  .option("--dongle-tcp", "also offer each dongle over TCP on <node>:6638")
  .option("--no-zigbee", "hosts and services only: no dongles, no zigbee2mqtt")
  .option("--keep-on-failure", "leave a half-built lab in place when up fails")
  .option(
    "--link <mode>",
    "dongles' serial line: instant (default) or realistic (115200 baud 8N1, chip latency, NV costs)",
    linkMode,
  )
  .option(
    "--adapter <adapter>",
    "dongles: zstack (default, TI Z-Stack) or ember (Silicon Labs EmberZNet), or per node: node1=ember,node2=zstack",
    adapterOption,
  )
  .action(
    async (opts: {
      nodes: number;
      adapter?: DongleAdapter | Record<string, DongleAdapter>;
      peerSsh?: boolean;
      dongleTcp?: boolean;
      zigbee: boolean;
      keepOnFailure?: boolean;
      link?: LinkMode;
    }) => {
      const started = Date.now();
      const lab = await Lab.up({
        name: labName(),
        nodes: opts.nodes,
        peerSsh: opts.peerSsh ?? false,
        dongleTcp: opts.dongleTcp ?? false,
        zigbee: opts.zigbee,
        keepOnFailure: opts.keepOnFailure ?? false,
        ...(opts.link ? { link: opts.link } : {}),
        ...(opts.adapter ? { adapter: opts.adapter } : {}),
        log: (line) => console.log(line),
      });
      const info = lab.info;
      console.log(`up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      console.log(`  MQTT (from here): ${info.controller.mqttUrl}`);
      console.log(`  traps: ${info.controller.trapLog}`);
      for (const id of info.nodeIds)
        console.log(
          `  ${id}: ${info.nodes[id]!.address}, ${info.nodes[id]!.adapter ?? "zstack"} dongle, ssh host key ${info.nodes[id]!.ssh.hostKeyFingerprint}`,
        );
    },
  );

program
  .command("link")
  .description(
    "set the dongles' serial line timing (all nodes, or the ones named) from their next host session on",
  )
  .argument("<mode>", "instant or realistic", linkMode)
  .argument("[nodes...]", "node1, node2, ... (default: every node)")
  .action(async (mode: LinkMode, nodes: string[]) => {
    const lab = await Lab.attach(labName());
    for (const node of nodes) lab.node(node);
    await lab.setLink(mode, nodes.length > 0 ? nodes : lab.info.nodeIds);
    console.log(`link ${mode} on ${(nodes.length > 0 ? nodes : lab.info.nodeIds).join(", ")}`);
  });

program
  .command("down")
  .description("take the lab down: namespaces, mounts, processes, links, run dir")
  .action(async () => {
    const started = Date.now();
    await Lab.destroy(labName());
    console.log(`lab ${labName()} is down (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });

program
  .command("status")
  .option("--json", "machine-readable")
  .action(async (opts: { json?: boolean }) => {
    const lab = await Lab.attach(labName());
    const status = await lab.status();
    if (opts.json) {
      console.log(JSON.stringify(status, null, 2));
      return;
    }
    console.log(
      `lab ${status.name}: ${status.complete ? "up" : "incomplete"}, subnet ${lab.info.subnet}, run dir ${lab.info.runDir}`,
    );
    for (const host of status.hosts) {
      const services = Object.entries(host.services).map(([k, v]) => `${k}: ${v}`);
      console.log(`  ${host.host.padEnd(10)} ${host.address}${host.reachable ? "" : "  UNREACHABLE"}`);
      for (const line of services) console.log(`      ${line}`);
    }
    console.log(status.faults.length === 0 ? "  faults: none" : "  faults:");
    for (const f of status.faults)
      console.log(`      ${f.host} ${f.kind}${f.detail ? ` (${f.detail})` : ""}`);
  });

program
  .command("info")
  .description("print lab.json")
  .action(async () => {
    const lab = await Lab.attach(labName());
    console.log(JSON.stringify(lab.info, null, 2));
  });

program
  .command("exec")
  .description("run a command in a host: exec HOST [--user U] -- CMD ARGS...")
  .argument("<host>", "controller, node1, node2, ...")
  .argument("<command...>", "the command and its arguments (after --)")
  .option("--user <user>", "run as this user of the host (e.g. zigbee)")
  .option("--cwd <dir>", "working directory inside the host", "/")
  .action(async (host: string, command: string[], opts: { user?: string; cwd: string }) => {
    const lab = await Lab.attach(labName());
    if (host !== "controller" && !lab.info.nodes[host]) {
      throw new Error(`no host ${host} (hosts: controller, ${lab.info.nodeIds.join(", ")})`);
    }
    const argv0 = command[0] === "--" ? command.slice(1) : command;
    if (argv0.length === 0) throw new Error("exec: no command given");
    // Interactive: the command gets this terminal.
    const argv = enterArgv(lab.layout, lab.name, host as HostId, argv0, {
      ...(opts.user ? { user: opts.user } : {}),
      cwd: opts.cwd,
    });
    const child = spawn(argv[0]!, argv.slice(1), { stdio: "inherit" });
    child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  });

program
  .command("fault")
  .description("apply a fault (or its undo) to a host; `faults` lists the kinds")
  .argument("<kind>")
  .argument("<host>")
  .argument("[disk]", "fill-disk/free-disk: data (default) or home")
  .option("--loss <percent>", "netem: packet loss in each direction", number("--loss"))
  .option("--delay <ms>", "netem: delay of every packet the host sends", number("--delay"))
  .option("--clear", "netem: remove loss and delay; tool-fault: remove the tool fault")
  .option("--tool <name>", "tool-fault: the zigpy-znp tool (nvram_read, nvram_write, nvram_reset, ...)")
  .option(
    "--mode <mode>",
    "tool-fault: fail (exit 1, dongle untouched), corrupt (cut its -o file in half) or hang (never ends)",
  )
  .option("--times <n>", "tool-fault: only the next N runs (default: every run)", number("--times"))
  .option("--seconds <n>", "skew-clock: how far off (negative: behind)", number("--seconds"))
  .action(
    async (
      kind: string,
      host: string,
      disk: string | undefined,
      opts: {
        loss?: number;
        delay?: number;
        clear?: boolean;
        tool?: string;
        mode?: string;
        times?: number;
        seconds?: number;
      },
    ) => {
      const lab = await Lab.attach(labName());
      const options = { ...opts } as FaultOptions;
      if (disk !== undefined) {
        if (disk !== "data" && disk !== "home") throw new Error(`disk must be data or home, not ${disk}`);
        options.disk = disk;
      }
      await lab.fault(kind, host as HostId, options);
      console.log(`${kind} ${host}: done`);
    },
  );

program
  .command("faults")
  .description("list the fault kinds")
  .action(() => {
    for (const [kind, spec] of Object.entries(FAULTS)) {
      console.log(`${kind.padEnd(20)} ${spec.help}${spec.undo ? `  [undo: ${spec.undo}]` : ""}`);
    }
  });

program.parseAsync().catch((error: Error) => {
  console.error(`lab: ${error.message}`);
  process.exit(1);
});
