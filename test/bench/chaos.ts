/**
 * npm run chaos -- [--minutes M] [--seed S] [--adapter zstack|ember] [--keep-lab]: random faults
 * from the lab's list at random steps of switchovers, and incidents the automatic failover must
 * handle, for M minutes, in a three-node lab (docs/reliability.md, "Chaos"). `--adapter ember`:
 * EmberZNet dongles moved by the z2m-backup driver; its report is a section of its own. After every run the cluster must come to rest
 * (one node running zigbee2mqtt, online, no operation running), and at every moment and after
 * every run:
 * - at most one coordinator on the air (sampled at 4 Hz through the simulators);
 * - the active's frame counter above the highest any other dongle ever used;
 * - every marker file written into the active's data dir before a run on the active after it.
 * The sidecar's own SIGKILL is one of the faults (then it is started again and recovers).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { OperationRecord } from "../../sidecar/types.js";
import { Z2M_BACKUP_SWITCHOVER_STEPS } from "../lab/cluster-facts.js";
import type { FaultOptions } from "../lab/host/faults.js";
import type { DongleAdapter } from "../lab/host/naming.js";
import { SidecarApi } from "../lab/sidecar-api.js";
import { type HostId, Lab, REPO, type RunningSidecar } from "../lab/world.js";
import {
  AirSampler,
  countBy,
  log,
  machine,
  settle,
  type Violation,
  writeMarker,
  writeSection,
} from "./reliability.js";

interface Args {
  minutes: number;
  seed: number;
  adapter: DongleAdapter;
  keepLab: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { minutes: 60, seed: Date.now() % 1_000_000, adapter: "zstack", keepLab: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--keep-lab") args.keepLab = true;
    else if ((flag === "--minutes" || flag === "--seed") && Number.isFinite(Number(value)))
      args[flag === "--minutes" ? "minutes" : "seed"] = Number(argv[++i]);
    else if (flag === "--adapter" && (value === "zstack" || value === "ember")) {
      args.adapter = value;
      i++;
    } else
      throw new Error(
        `unknown argument ${flag} (use --minutes M --seed S --adapter zstack|ember --keep-lab)`,
      );
  }
  return args;
}

/** A small seeded generator (mulberry32): a run can be replayed with --seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// The planned switchover's steps (docs/failover.md): the final sync runs inside
// read-source-nvram, A's parking beside write-target-nvram and verify-target-nvram.
const ZSTACK_STEPS = [
  "preflight",
  "ensure-target-stopped",
  "prepare-target-nvram",
  "stop-source",
  "read-source-nvram",
  "write-target-nvram",
  "verify-target-nvram",
  "start-target",
  "wait-target-online",
];

// The z2m-backup driver's switchover (docs/coordinators.md): the final sync inside capture-source.
// Injected before the target is persisted as active, as for Z-Stack.
const BACKUP_STEPS = Z2M_BACKUP_SWITCHOVER_STEPS.filter((s) => s !== "persist-active");
/** A sync, once the one the scheduler may have started (after a failed takeover) has ended. */
async function syncWhenFree(api: SidecarApi): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const { status, body } = await api.request<OperationRecord>("POST", "/api/v1/sync");
    if (status === 202) {
      await api.finish(body);
      return;
    }
    if (status !== 409) throw new Error(`POST /api/v1/sync: ${status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface Fault {
  name: string;
  /** Which node of the takeover it hits. */
  on: "source" | "target";
  kind: string;
  options?: FaultOptions;
  /** The fault that undoes it, if any. */
  undo?: { kind: string; options?: FaultOptions };
}

const FAULTS: Fault[] = [
  { name: "cut the target's link", on: "target", kind: "cut-link", undo: { kind: "restore-link" } },
  { name: "cut the old active's link", on: "source", kind: "cut-link", undo: { kind: "restore-link" } },
  { name: "kill zigbee2mqtt on the target", on: "target", kind: "kill-zigbee2mqtt" },
  {
    name: "nvram_write fails once on the target",
    on: "target",
    kind: "tool-fault",
    options: { tool: "nvram_write", mode: "fail", times: 1 },
    undo: { kind: "tool-fault", options: { clear: true } },
  },
  {
    name: "nvram_read fails on the target until cleared",
    on: "target",
    kind: "tool-fault",
    options: { tool: "nvram_read", mode: "fail" },
    undo: { kind: "tool-fault", options: { clear: true } },
  },
  {
    name: "nvram_read output corrupt once on the old active",
    on: "source",
    kind: "tool-fault",
    options: { tool: "nvram_read", mode: "corrupt", times: 1 },
    undo: { kind: "tool-fault", options: { clear: true } },
  },
  {
    name: "30 % packet loss at the target",
    on: "target",
    kind: "netem",
    options: { loss: 30 },
    undo: { kind: "netem", options: { clear: true } },
  },
  { name: "stop sshd on the target", on: "target", kind: "stop-sshd", undo: { kind: "start-sshd" } },
  {
    name: "the target's home (staging) disk full",
    on: "target",
    kind: "fill-disk",
    options: { disk: "home" },
    undo: { kind: "free-disk" },
  },
  { name: "unplug the target's dongle", on: "target", kind: "unplug", undo: { kind: "replug" } },
  { name: "power-cycle the target's dongle", on: "target", kind: "power-cycle-dongle" },
  { name: "SIGKILL the sidecar", on: "target", kind: "sidecar-kill" },
  {
    name: "the target's data disk full",
    on: "target",
    kind: "fill-disk",
    options: { disk: "data" },
    undo: { kind: "free-disk" },
  },
];

interface RunRecord {
  what: string;
  step?: string;
  outcome: string;
  settled: boolean;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rnd = random(args.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const deadline = Date.now() + args.minutes * 60_000;
  const ember = args.adapter === "ember";
  // zigpy-znp's tools do not run on an EmberZNet node: their faults have nothing to hit there.
  const faults = ember ? FAULTS.filter((f) => f.kind !== "tool-fault") : FAULTS;
  const steps = ember ? BACKUP_STEPS : ZSTACK_STEPS;
  log(`chaos for ${args.minutes} min, seed ${args.seed}, ${args.adapter} dongles`);
  execFileSync("npx", ["tsup", "--silent"], { cwd: REPO, stdio: "inherit" });
  const labName = ember ? "chaosember" : "chaos";
  // An EFR32's custom EUI64 token is written once: every ember run starts from blank dongles.
  if (ember) await Lab.destroy(labName);
  const lab = await Lab.up({ name: labName, nodes: 3, adapter: args.adapter });
  const sampler = new AirSampler(lab);
  const violations: Violation[] = [];
  const runs: RunRecord[] = [];
  let markerCount = 0;
  const markers: { path: string; content: string }[] = [];
  // A node cut off the network still runs its coordinator on the air; the fence is the lab's smart
  // plug (the dongle's power), as a real installation would configure one.
  const tsx = pathToFileURL(join(REPO, "node_modules/tsx/dist/esm/index.mjs")).href;
  const fence = [process.execPath, "--import", tsx, join(REPO, "test/bench/fence-unplug.ts"), labName];
  const configPath = lab.sidecarConfig({
    failover: {
      automatic: true,
      grace: "10s",
      restart_attempts: 1,
      cooldown: "20s",
      max_per_hour: 1000,
      fence_command: fence,
    },
    sync: { interval: "1h" },
    monitor: { probe_interval: "2s", failures: 3 },
    snmp: undefined,
  });
  let sidecar: RunningSidecar = await lab.startSidecar(configPath);
  let api = new SidecarApi(sidecar.url, sidecar.token);
  const restartSidecar = async () => {
    await sidecar.stop("SIGKILL");
    sidecar = await lab.startSidecar(configPath);
    api = new SidecarApi(sidecar.url, sidecar.token);
  };
  sampler.start();
  try {
    let active = await settle(api, lab);
    if (!active) throw new Error("the lab's cluster did not come to rest at the start");
    while (Date.now() < deadline) {
      if (!active) break;
      markers.push(await writeMarker(lab, active, ++markerCount));
      // Every standby gets the markers before anything happens (a failover takes the staged copy).
      await syncWhenFree(api).catch(() => undefined);
      const record: RunRecord = { what: "", outcome: "", settled: false };
      const roll = rnd();
      try {
        if (roll < 0.7) {
          const standbys = lab.info.nodeIds.filter((n) => n !== active) as HostId[];
          const target = pick(standbys);
          const fault = pick(faults);
          const step = pick(steps);
          const host = fault.on === "target" ? target : active;
          record.what = `switchover ${active} → ${target}, ${fault.name} at ${step}`;
          record.step = step;
          const { status, body } = await api.request<OperationRecord>("POST", "/api/v1/switchover", {
            target,
          });
          if (status !== 202) {
            record.outcome = `refused ${status}: ${JSON.stringify(body).slice(0, 120)}`;
          } else {
            let injected = false;
            await api.waitFor(
              `step ${step} or the end`,
              async () => {
                const op = await api.operation(body.id);
                if (!injected && op.steps.some((s) => s.key === step)) {
                  injected = true;
                  if (fault.kind === "sidecar-kill") await restartSidecar();
                  else await lab.fault(fault.kind, host, fault.options ?? {});
                }
                return op.status !== "running" || (injected && fault.kind === "sidecar-kill");
              },
              600_000,
            );
            const op = await api.operation(body.id).catch(() => undefined);
            record.outcome = injected ? (op?.status ?? "(gone)") : `${op?.status}, fault not reached`;
            if (fault.undo) await lab.fault(fault.undo.kind, host, fault.undo.options ?? {});
          }
        } else {
          const incident = pick(["kill zigbee2mqtt on the active", "cut the active's link"] as const);
          record.what = `incident: ${incident} (${active})`;
          const since = Date.now();
          if (incident === "kill zigbee2mqtt on the active") await lab.fault("kill-zigbee2mqtt", active);
          else await lab.fault("cut-link", active);
          // The policy acts after its grace: a restart in place, or a failover.
          const acted = await api
            .waitFor(
              "the policy to act",
              async () =>
                (await api.operations())
                  .filter(
                    (o) =>
                      Date.parse(o.started_at) >= since && (o.kind === "failover" || o.kind === "restart"),
                  )
                  .find((o) => o.status !== "running"),
              180_000,
            )
            .catch(() => undefined);
          record.outcome = acted ? `${acted.kind} ${acted.status}` : "no action within 3 min";
          if (incident === "cut the active's link") await lab.fault("restore-link", active);
        }
      } catch (error) {
        record.outcome = `harness error: ${(error as Error).message.slice(0, 160)}`;
      }
      const next = await settle(api, lab);
      record.settled = next !== undefined;
      // Power back for a fenced node's dongle, as its owner would once the sidecar says the node
      // is a plain standby again (reachable, zigbee2mqtt stopped, the fence lifted).
      for (const id of lab.info.nodeIds as HostId[]) {
        if (!(await lab.simulator(id).status()).unplugged) continue;
        await api
          .waitForStatus(
            `${id} reachable, stopped and no longer fenced`,
            (s) =>
              !s.fenced[id] &&
              s.nodes.some((n) => n.id === id && n.reachable && n.zigbee2mqtt_running === false),
            180_000,
          )
          .catch(() => log(`${id} still fenced or running: its dongle is replugged anyway`));
        await lab.fault("replug", id);
        record.outcome += `; ${id}'s dongle fenced (unplugged), replugged`;
      }
      if (!next) {
        violations.push({ at: new Date().toISOString(), kind: "did not settle", detail: record.what });
      } else {
        const on = await lab.simulator(next).status();
        for (const id of lab.info.nodeIds.filter((n) => n !== next)) {
          const other = await lab.simulator(id).status();
          if (other.max_nwk_frame_counter >= on.nwk_frame_counter)
            violations.push({
              at: new Date().toISOString(),
              kind: "counter lower",
              detail: `${record.what}: active ${next} at ${on.nwk_frame_counter}, ${id} once used ${other.max_nwk_frame_counter}`,
            });
        }
        for (const marker of markers) {
          const content = await lab
            .readFile(next, `${lab.node(next).dataDir}/${marker.path}`)
            .catch(() => undefined);
          if (content !== marker.content)
            violations.push({
              at: new Date().toISOString(),
              kind: "data lost",
              detail: `${record.what}: ${marker.path} on ${next}`,
            });
        }
      }
      runs.push(record);
      log(`run ${runs.length}: ${record.what}: ${record.outcome}${record.settled ? "" : " — NOT AT REST"}`);
      active = next;
    }
  } finally {
    sampler.stop();
    await sidecar.stop().catch(() => undefined);
    if (!args.keepLab) await lab.down();
  }
  const all = [...violations, ...sampler.violations];
  const kinds = countBy(all, (v) => v.kind);
  const outcomes = countBy(runs, (r) => r.outcome.replace(/:.*/, ""));
  const byFault = countBy(runs, (r) =>
    r.what
      .replace(/^switchover \S+ → \S+, /, "")
      .replace(/ at \S+$/, "")
      .replace(/ \(node\d\)$/, ""),
  );
  const date = new Date().toISOString().slice(0, 10);
  writeSection(
    ember ? "## Chaos with EmberZNet dongles (z2m-backup driver)" : "## Chaos: random faults at random steps",
    `\`npm run chaos -- --minutes ${args.minutes} --seed ${args.seed}${ember ? " --adapter ember" : ""}\` on ${date}. Machine: ${machine()}.
Three nodes${ember ? " with simulated EmberZNet dongles, moved by zigbee2mqtt's coordinator backup (z2m-backup driver)" : ""}; 70 % of the runs are switchovers to a random standby with a random fault injected
when a random step starts, 30 % incidents (the active's zigbee2mqtt killed, or its link cut) that
the automatic failover (grace 10 s, one restart in place) handles. A marker file is written into
the active's data dir and synced before every run.

| | |
|---|---|
| runs | ${runs.length} |
| outcomes | ${Object.entries(outcomes)
      .map(([k, n]) => `${k}: ${n}`)
      .join("; ")} |
| runs by fault | ${Object.entries(byFault)
      .map(([k, n]) => `${k}: ${n}`)
      .join("; ")} |
| cluster not at rest within 4 min after a run | ${kinds["did not settle"] ?? 0} |
| on-air samples (4 Hz), moments with two coordinators | ${sampler.samples}, ${kinds["two coordinators"] ?? 0} |
| moments with another network on the air beside ours (zigpy-znp's throwaway formation in a network_restore, e.g. while a standby is armed) | ${sampler.otherNetworkSamples} |
| the active's counter not above what another dongle used | ${kinds["counter lower"] ?? 0} |
| marker files lost (${markers.length} written, all checked after every run) | ${kinds["data lost"] ?? 0} |

${
  all.length === 0
    ? "No violation."
    : `Violations:\n\n${all
        .slice(0, 40)
        .map((v) => `- ${v.at} ${v.kind}: ${v.detail}`)
        .join("\n")}`
}

<details><summary>Every run</summary>

${runs.map((r, i) => `${i + 1}. ${r.what}: ${r.outcome}${r.settled ? "" : " (not at rest)"}`).join("\n")}

</details>
`,
  );
  log(`done: ${runs.length} runs, ${all.length} violations; docs/reliability.md written`);
  if (all.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
