/**
 * npm run bench: switchover and failover timings in the lab, written to docs/benchmarks.md.
 *
 *   npm run bench -- [--links instant,realistic] [--rounds K] [--failovers K] [--detections K]
 *                    [--no-breakdown] [--name LAB] [--keep-lab]
 *
 * Measures, with the real zigbee2mqtt, sshd and zigpy-znp tools on simulated dongles, for each
 * serial link mode (docs/simulator.md, "The serial link"), on the same lab in the same run:
 * - rounds of, interleaved: two of our planned switchovers (node1 ⇄ node2, every step, the total
 *   and the Zigbee outage seen on MQTT: bridge/state offline → online), two runs of the
 *   prototype's switchover script as the reference (reference.ts), and the floor: the parts any
 *   switchover must do, each measured alone (service stop, nvram_read, nvram_write, start → online);
 * - where each zigpy-znp call spends its time (breakdown.ts) and what SSH costs;
 * - unplanned failovers after the active's link is cut (started by hand at once);
 * and once, detection latency of the monitoring (a zigbee2mqtt crash, a cut link).
 * Timings are measurements, never assertions.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import type { ClusterStatus, OperationRecord } from "../../sidecar/types.js";
import { simulatorEntry } from "../lab/host/dongle.js";
import { SidecarApi } from "../lab/sidecar-api.js";
import { LINK_MODES, type LinkMode, REALISTIC_LINK } from "../lab/simulator/link.js";
import { type HostId, Lab, REPO } from "../lab/world.js";
import { countItems, delta, type Phases, startupParts, timedTool } from "./breakdown.js";
import { type OutageWatcher, outageWatcher } from "./outage.js";
import { prototypeSwitchover, stageAux } from "./reference.js";
import { HEADER, median, ratio, row, Samples, seconds } from "./stats.js";

interface Args {
  links: LinkMode[];
  rounds: number;
  failovers: number;
  detections: number;
  breakdown: boolean;
  name: string;
  keepLab: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    links: ["instant", "realistic"],
    rounds: 3,
    failovers: 4,
    detections: 5,
    breakdown: true,
    name: process.env.Z2MHA_LAB_NAME ?? "bench",
    keepLab: false,
  };
  const counts: Record<string, "rounds" | "failovers" | "detections"> = {
    "--rounds": "rounds",
    "--failovers": "failovers",
    "--detections": "detections",
  };
  const usage =
    "use --links instant,realistic --rounds K --failovers K --detections K --no-breakdown --name LAB --keep-lab";
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const key = counts[flag];
    const value = argv[i + 1];
    if (flag === "--keep-lab") args.keepLab = true;
    else if (flag === "--no-breakdown") args.breakdown = false;
    else if (flag === "--name" && value && /^[a-z0-9]{1,10}$/.test(value)) args.name = argv[++i] as string;
    else if (flag === "--links" && value) {
      const links = value.split(",");
      const bad = links.filter((l) => !(LINK_MODES as readonly string[]).includes(l));
      if (bad.length > 0 || links.length === 0) throw new Error(`--links: unknown mode(s) ${bad.join(", ")}`);
      args.links = links as LinkMode[];
      i++;
    } else if (key && value !== undefined && Number.isInteger(Number(value)) && Number(value) >= 0) {
      args[key] = Number(value);
      i++;
    } else throw new Error(`unknown or incomplete argument ${flag} (${usage})`);
  }
  return args;
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const kernel = execFileSync("uname", ["-r"]).toString().trim();
  const os = execFileSync("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"]).toString().trim();
  return `${os}, kernel ${kernel}, ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
}

const other = (node: HostId): HostId => (node === "node1" ? "node2" : "node1");

/** What one link mode's part of the run measured. */
interface ModeResult {
  mode: LinkMode;
  ours: {
    outage: number[];
    total: number[];
    steps: Samples;
    oldOnAir: number;
    runs: number;
    /** Switchovers whose outage wrote nothing onto B (the pre-raised counter held). */
    nothingWritten: number;
  };
  reference: { outage: number[]; steps: Samples; oldOnAir: number; runs: number };
  floor: Samples;
  /** Per round: stop + nvram_read + nvram_write + start → online, each measured alone. */
  floorSums: number[];
  failover: { total: number[]; outage: number[]; steps: Samples; armed: number; runs: number };
  /** The sync before each failover: its arming of the target (written and read back when it was not armed yet). */
  arming: Samples;
  calls: [string, Phases][];
  notes: string[];
  /** How far the dongles' deliveries were off the link's computed schedule (realistic only). */
  lateness?: { deliveries: number; meanMs: number };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) =>
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const loadBefore = loadavg();
  log("building the sidecar");
  execFileSync("npx", ["tsup", "--silent"], { cwd: REPO, stdio: "inherit" });
  log(`bringing the lab up (lab "${args.name}")`);
  const lab = await Lab.up({ name: args.name, nodes: 2, link: "instant" });
  const results: ModeResult[] = [];
  const failures: string[] = [];
  const detection = { crash: [] as number[], link: [] as number[] };
  let startup: Awaited<ReturnType<typeof startupParts>> | undefined;
  let ssh: { connect: number; exec: number; fresh: number } | undefined;
  try {
    const config = lab.sidecarConfig({
      failover: { automatic: false },
      // zigbee2mqtt's backup takes ~11 s on the realistic link (~940 requests), more than the 10 s default
      sync: { interval: "1h", backup_timeout: "90s" },
      monitor: { probe_interval: "2s", failures: 3 },
      snmp: undefined,
    });
    const sidecar = await lab.startSidecar(config);
    const api = new SidecarApi(sidecar.url, sidecar.token);
    const watcher = await outageWatcher(lab);
    const settled = (what: string, active: HostId) =>
      api.waitForStatus(
        what,
        (s) => s.active === active && s.running_operation === null && standbyProbed(s, other(active)),
        300_000,
      );
    const sync = async (): Promise<OperationRecord | undefined> => {
      // The sidecar's own syncs (at start-up, after a change zigbee2mqtt reported) hold the runner.
      let op: OperationRecord | undefined;
      while (!op) {
        const { status, body } = await api.request<OperationRecord>("POST", "/api/v1/sync", {});
        if (status === 202) op = await api.finish(body);
        else if (status === 409) await new Promise((r) => setTimeout(r, 500));
        else throw new Error(`POST /api/v1/sync: ${status} ${JSON.stringify(body)}`);
      }
      if (op.status !== "succeeded") failures.push(`sync ${op.id}: ${op.status} ${op.error?.message ?? ""}`);
      return op;
    };
    const maintenance = (on: boolean) => api.call("PUT", "/api/v1/automation", { maintenance: on });
    try {
      // A lab kept from an earlier run may have either node active.
      const first = await api.waitForStatus(
        "an active node and the other probed",
        (s) =>
          s.active !== null && s.running_operation === null && standbyProbed(s, other(s.active as HostId)),
        300_000,
      );
      await settled(`${first.active} active`, first.active as HostId);
      await sync();

      for (const mode of args.links) {
        const result: ModeResult = {
          mode,
          ours: { outage: [], total: [], steps: new Samples(), oldOnAir: 0, runs: 0, nothingWritten: 0 },
          reference: { outage: [], steps: new Samples(), oldOnAir: 0, runs: 0 },
          floor: new Samples(),
          floorSums: [],
          failover: { total: [], outage: [], steps: new Samples(), armed: 0, runs: 0 },
          arming: new Samples(),
          calls: [],
          notes: [],
        };
        results.push(result);
        log(`link ${mode}: dongles switched, the active's zigbee2mqtt restarted on it`);
        const active = (await api.status()).active as HostId;
        await maintenance(true);
        await lab.setLink(mode);
        await lab.stopZigbee2mqtt(active);
        await lab.startZigbee2mqtt(active, { timeout: 300_000 });
        await maintenance(false);
        await settled(`${active} active again`, active);
        await sync();

        for (let round = 0; round < args.rounds; round++) {
          const tag = `${mode} round ${round + 1}/${args.rounds}`;
          for (let i = 0; i < 2; i++) {
            const from = (await api.status()).active as HostId;
            log(`${tag}: our switchover ${from} → ${other(from)}`);
            await ourSwitchover(api, lab, watcher, from, result, failures);
          }
          const x = (await api.status()).active as HostId;
          const y = other(x);
          await maintenance(true);
          for (const [from, to] of [
            [x, y],
            [y, x],
          ] as const) {
            log(`${tag}: the prototype's switchover ${from} → ${to}`);
            await stageAux(lab, from, to);
            const run = await prototypeSwitchover(lab, from, to, watcher);
            result.reference.runs++;
            const outage = run.outage ?? (await nextOutage(watcher));
            if (outage !== undefined) result.reference.outage.push(outage);
            for (const [name, ms] of run.steps) result.reference.steps.add(name, ms);
            if (run.oldOnAir) result.reference.oldOnAir++;
            failures.push(...run.failures.map((f) => `reference ${from} → ${to}: ${f}`));
          }
          log(`${tag}: the floor parts on ${x} and ${y}`);
          result.floorSums.push(await floorParts(lab, x, y, result.floor, failures));
          await maintenance(false);
          await settled(`${x} active after the reference runs`, x);
          await sync();
        }

        if (args.breakdown) {
          const x = (await api.status()).active as HostId;
          log(`${mode}: where the zigpy-znp calls spend their time`);
          await maintenance(true);
          result.calls = await callBreakdown(lab, x, other(x), result.notes, failures);
          if (!startup) {
            startup = await startupParts(lab, x);
            ssh = await sshCost(lab, x);
          }
          await maintenance(false);
          await settled(`${x} active after the breakdown`, x);
          await sync();
        }

        if (mode === "realistic") {
          const all = await Promise.all(lab.info.nodeIds.map((n) => lab.simulator(n).stats()));
          const deliveries = all.reduce((n, x) => n + x.link.deliveries, 0);
          const total = all.reduce((n, x) => n + x.link.deliveries * x.link.mean_lateness_ms, 0);
          result.lateness = { deliveries, meanMs: deliveries ? total / deliveries : 0 };
        }

        for (let i = 0; i < args.failovers; i++) {
          const from = (await api.status()).active as HostId;
          const to = other(from);
          const before = await sync();
          const arm = before?.steps.find((s) => s.key === `arm:${to}`);
          if (arm)
            result.arming.add(
              /^armed already/.test(arm.detail ?? "")
                ? "arm B: armed already"
                : "arm B: written and read back",
              arm.duration_ms ?? 0,
            );
          watcher.reset();
          log(`${mode} failover ${i + 1}/${args.failovers}: cut ${from}'s link, take over on ${to}`);
          const cut = Date.now();
          await lab.fault("cut-link", from);
          const op = await api.finish(
            api.call<OperationRecord>("POST", "/api/v1/failover", { target: to }),
            900_000,
          );
          const onlineAt = Date.now();
          if (op.status !== "succeeded")
            failures.push(`${mode} failover ${op.id}: ${op.status} ${op.error?.message ?? ""}`);
          else {
            result.failover.runs++;
            const rename = (text: string) =>
              text.replace(/node\d+/g, (m) => (m === from ? "A" : m === to ? "B" : m));
            for (const step of op.steps) result.failover.steps.add(rename(step.name), step.duration_ms ?? 0);
            if (/^armed at /.test(String(op.result?.method ?? ""))) result.failover.armed++;
            result.failover.total.push(op.duration_ms ?? 0);
            // The broker may publish the cut node's will after the new active is online: the
            // outage is from the cut to the new active's online.
            result.failover.outage.push(onlineAt - cut);
          }
          await lab.fault("restore-link", from);
          await api.waitForStatus(
            `${from} back as a plain standby`,
            (s) => standbyProbed(s, from) && s.running_operation === null,
            300_000,
          );
        }
      }

      // Detection does not depend on the serial link: measured once, on the instant one.
      if (args.detections > 0) {
        const active = (await api.status()).active as HostId;
        await maintenance(true);
        if (args.links.at(-1) !== "instant") {
          await lab.setLink("instant");
          await lab.stopZigbee2mqtt(active);
          await lab.startZigbee2mqtt(active);
        }
        await maintenance(false);
      }
      await watcher.close();
      await sidecar.stop();
      if (args.detections > 0) await detectionLatency(lab, args.detections, detection, log);
    } finally {
      await sidecar.stop();
    }
  } finally {
    if (!args.keepLab) await lab.down();
  }

  const text = report(results, detection, startup, ssh, failures, loadBefore, loadavg());
  writeFileSync(join(REPO, "docs", "benchmarks.md"), text);
  process.stdout.write(text);
}

function standbyProbed(s: ClusterStatus, node: HostId): boolean {
  const n = s.nodes.find((x) => x.id === node);
  return n?.health === "standby-ready" || n?.health === "standby-not-ready";
}

async function nextOutage(watcher: OutageWatcher): Promise<number | undefined> {
  for (let i = 0; i < 40; i++) {
    const outage = watcher.take();
    if (outage !== undefined) return outage;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function ourSwitchover(
  api: SidecarApi,
  lab: Lab,
  watcher: OutageWatcher,
  from: HostId,
  result: ModeResult,
  failures: string[],
): Promise<void> {
  const target = other(from);
  watcher.reset();
  const op = await api.finish(api.call<OperationRecord>("POST", "/api/v1/switchover", { target }), 900_000);
  result.ours.runs++;
  if (op.status !== "succeeded") {
    failures.push(`${result.mode} switchover ${op.id}: ${op.status} ${op.error?.message ?? ""}`);
    return;
  }
  result.ours.total.push(op.duration_ms ?? 0);
  const rename = (text: string) =>
    text.replace(/node\d+/g, (m) => (m === from ? "A" : m === target ? "B" : m));
  for (const step of op.steps) {
    const key = rename(step.name);
    result.ours.steps.add(key, step.duration_ms ?? 0);
    // Pieces run side by side report their own time in the detail: "NVRAM (1.7 s): …; final sync (0.2 s): …"
    for (const [, label, secs] of (step.detail ?? "").matchAll(
      /(?:^|; )([a-z][\w ]*?) \((\d+(?:\.\d+)?) s\): /g,
    ))
      result.ours.steps.add(`${key} · ${rename(label as string)} (side by side)`, Number(secs) * 1000);
  }
  const outage = await nextOutage(watcher);
  if (outage !== undefined) result.ours.outage.push(outage);
  if ((await lab.simulator(from).status()).state === "started") result.ours.oldOnAir++;
  if (/nothing written$/.test(op.steps.find((s) => s.key === "write-target-nvram")?.detail ?? ""))
    result.ours.nothingWritten++;
}

/** The parts any switchover must do, each alone: stop X, nvram_read X, nvram_write Y, start X → online. */
async function floorParts(
  lab: Lab,
  x: HostId,
  y: HostId,
  parts: Samples,
  failures: string[],
): Promise<number> {
  const file = "/home/zigbee/bench-nvram.json";
  let sum = 0;
  const timed = async (name: string, fn: () => Promise<unknown>) => {
    const t = Date.now();
    await fn();
    parts.add(name, Date.now() - t);
    sum += Date.now() - t;
  };
  await timed("service stop (rc-service zigbee2mqtt stop)", () => lab.service(x, "stop"));
  await timed("nvram_read (zigpy-znp, as the SSH user)", async () => {
    const read = await lab.znp(x, "nvram_read", ["-o", file], { timeout: 900_000 });
    if (read.code !== 0) failures.push(`floor nvram_read: ${read.stderr.slice(-300)}`);
  });
  await lab.writeFile(y, file, await lab.readFile(x, file), { user: "zigbee" });
  await timed("nvram_write (zigpy-znp, as the SSH user)", async () => {
    const write = await lab.znp(y, "nvram_write", ["-i", file], { timeout: 900_000 });
    if (write.code !== 0) failures.push(`floor nvram_write: ${write.stderr.slice(-300)}`);
  });
  await timed("service start → bridge/state online", async () => {
    await lab.service(x, "start");
    await lab.waitForZigbee2mqtt(x, { timeout: 300_000 });
  });
  return sum;
}

/**
 * Every zigpy-znp call of a switchover, alone, split into its phases: read X (the old active),
 * a delta write onto Y (only the items Y does not already hold), reset Y, a full write onto Y,
 * read Y (the verification), park X (one item written back, then the reset).
 */
async function callBreakdown(
  lab: Lab,
  x: HostId,
  y: HostId,
  notes: string[],
  failures: string[],
): Promise<[string, Phases][]> {
  const calls: [string, Phases][] = [];
  const run = async (label: string, node: HostId, tool: string, toolArgs: string[]) => {
    const r = await timedTool(lab, node, tool, toolArgs);
    if (r.code !== 0) failures.push(`breakdown ${label}: ${r.stderr.slice(-300)}`);
    calls.push([label, r.phases]);
  };
  const dumpFile = "/home/zigbee/bench-breakdown.json";
  const deltaFile = "/home/zigbee/bench-delta.json";
  const parkFile = "/home/zigbee/bench-park.json";
  await lab.service(x, "stop");
  await run("nvram_read (old active, formed)", x, "nvram_read", ["-o", dumpFile]);
  const text = await lab.readFile(x, dumpFile);
  const dump = JSON.parse(text) as Record<string, Record<string, string>>;
  const onY = (await lab.simulator(y).nvram()) as unknown as Record<string, Record<string, string>>;
  const diff = delta(dump, onY);
  await lab.writeFile(y, deltaFile, JSON.stringify(diff.dump), { user: "zigbee" });
  await lab.writeFile(y, dumpFile, text, { user: "zigbee" });
  notes.push(
    `the dump has ${countItems(dump)} items; the standby's dongle (an older copy of the same network) differed in ${diff.items}`,
  );
  await run(`nvram_write, delta (${diff.items} items)`, y, "nvram_write", ["-i", deltaFile]);
  await run("nvram_reset (formed)", y, "nvram_reset", []);
  await run(`nvram_write, full (${countItems(dump)} items)`, y, "nvram_write", ["-i", dumpFile]);
  await run("nvram_read (verification)", y, "nvram_read", ["-o", "/home/zigbee/bench-verify.json"]);
  const park = dump.LEGACY?.USERDESC;
  await lab.writeFile(x, parkFile, JSON.stringify({ LEGACY: park ? { USERDESC: park } : {} }), {
    user: "zigbee",
  });
  await run("nvram_write, park (1 item + reset)", x, "nvram_write", ["-i", parkFile]);
  await lab.service(x, "start");
  await lab.waitForZigbee2mqtt(x, { timeout: 300_000 });
  return calls;
}

/** SSH as the sidecar pays it: opening a connection, and one command on a connection already open. */
async function sshCost(lab: Lab, node: HostId) {
  const entry = simulatorEntry(REPO);
  const argv = [
    process.execPath,
    "--import",
    `file://${entry.tsx}`,
    join(REPO, "test", "bench", "ssh-timing.ts"),
    lab.node(node).address,
    lab.info.ssh.user,
    lab.info.ssh.privateKey,
    "5",
    "--",
    "true",
  ];
  const out = await lab.execOk("controller", argv);
  const timing = JSON.parse(out.stdout) as { connect_ms: number; exec_ms: number[] };
  const fresh: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = Date.now();
    await lab.ssh(node, ["true"]);
    fresh.push(Date.now() - t);
  }
  return { connect: timing.connect_ms, exec: median(timing.exec_ms), fresh: median(fresh) };
}

async function detectionLatency(
  lab: Lab,
  runs: number,
  detection: { crash: number[]; link: number[] },
  log: (line: string) => void,
): Promise<void> {
  log("detection latency");
  const detectConfig = lab.sidecarConfig({
    failover: { automatic: true, grace: "10m", restart_attempts: 0 },
    sync: { interval: "1h" },
    monitor: { probe_interval: "3s", failures: 3 },
    snmp: undefined,
  });
  const detector = await lab.startSidecar(detectConfig);
  try {
    const dapi = new SidecarApi(detector.url, detector.token);
    await dapi.waitForStatus("the sidecar sees the active", (s) => s.active !== null);
    const current = (await dapi.status()).active as HostId;
    const events = dapi.events();
    await events.ready;
    /** Time from `t` to the first active_down alert raised after it. */
    const detected = async (t: number) =>
      (
        await events.seen(
          "alert.raised",
          (d) => (d.alert as { kind?: string })?.kind === "active_down" && Date.parse(String(d.ts)) >= t,
        )
      ).at - t;
    // Each run starts from a clean slate: the alert over and the node answering its probes again
    // (MQTT can be back before SSH is: a run that began with failed probes still counted came
    // out shorter than the probes allow).
    const recovered = () =>
      dapi.waitForStatus(
        "recovered",
        (s) =>
          !s.alerts.some((a) => a.kind === "active_down") &&
          s.nodes.some((n) => n.id === current && n.health === "active-healthy"),
      );
    for (let i = 0; i < runs; i++) {
      log(`detection ${i + 1}/${runs}: SIGKILL zigbee2mqtt`);
      const t = Date.now();
      await lab.fault("kill-zigbee2mqtt", current);
      detection.crash.push(await detected(t));
      await lab.service(current, "zap");
      await lab.service(current, "start");
      await lab.waitForZigbee2mqtt(current);
      await recovered();
    }
    for (let i = 0; i < runs; i++) {
      log(`detection ${i + 1}/${runs}: cut link`);
      const t = Date.now();
      await lab.fault("cut-link", current);
      detection.link.push(await detected(t));
      await lab.fault("restore-link", current);
      await recovered();
    }
    events.stop();
  } finally {
    await detector.stop();
  }
}

// ------------------------------------------------------------------------------------ the report

function report(
  results: ModeResult[],
  detection: { crash: number[]; link: number[] },
  startup: Awaited<ReturnType<typeof startupParts>> | undefined,
  ssh: { connect: number; exec: number; fresh: number } | undefined,
  failures: string[],
  loadBefore: number[],
  loadAfter: number[],
): string {
  const date = new Date().toISOString().slice(0, 10);
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(" / ");
  const sections = results.map((r) => modeSection(r));
  return `# Benchmarks

Measured by \`npm run bench\` in the lab (real zigbee2mqtt 2.14.1, sshd, Mosquitto and zigpy-znp 1.1.1
tools; simulated CC2652 dongles behind a pty) on ${date}.
Machine: ${machine()}; load average (1/5/15 min) ${load(loadBefore)} at the start, ${load(loadAfter)} at the
end (other sessions run tests on this machine too).
Median, min and max over n runs, in seconds. The bench measures; no test asserts on these numbers.

Two serial links (docs/simulator.md, "The serial link"): **instant** (the simulator answers at
once) and **realistic** (${REALISTIC_LINK.baud} baud 8N1, ${REALISTIC_LINK.requestLatencyMs} ms chip latency per request, +${REALISTIC_LINK.nvWriteMs} ms per NV write,
+${REALISTIC_LINK.nvDeleteMs} ms per NV delete), each on the same lab in the same run. In each round, interleaved: two of our
switchovers (node1 ⇄ node2), two runs of the prototype's switchover script (the reference:
stop both nodes twice, nvram_read, copy, nvram_reset, nvram_write, copy the data dir, start; no
checks, no parking, no counter increment; \`test/bench/reference.ts\`), and the floor: service stop,
nvram_read, nvram_write and start → online, each measured alone (through the lab's exec, not
SSH; the write onto the standby's dongle as it is, an older copy of the network). The floor's
outage is the sum of its parts in that round. The reference and the floor run with the sidecar in
maintenance mode.

${sections.join("\n")}
## Detection latency (monitoring)

From the fault to the sidecar's \`active_down\` alert on its event stream, with
\`monitor.probe_interval: 3s\`, \`monitor.failures: 3\` (the defaults), \`probe_timeout: 2.5s\`, on the
instant link (detection does not use the dongle).
A crash is on MQTT at once (the last will), and the alert waits for a probe to agree that the
service is down: the policy asks for that probe as soon as \`bridge/state\` goes offline. A cut link takes \`failures\` unanswered probes, then an
unanswered health check (2.5 s). The failover policy then waits \`failover.grace\` (30 s by default) before acting.

${HEADER}
${row("zigbee2mqtt crash (SIGKILL; MQTT last will)", detection.crash)}
${row("link cut (probes, then a health check on MQTT)", detection.link)}
${startup ? startupSection(startup, ssh) : ""}${failures.length ? `\n## Failures during this run\n\n${failures.map((f) => `- ${f}`).join("\n")}\n` : ""}`;
}

function modeSection(r: ModeResult): string {
  const ours = median(r.ours.outage);
  const ref = median(r.reference.outage);
  const floor = median(r.floorSums);
  const failover = median(r.failover.outage);
  const calls = r.calls.length
    ? `
### Where each zigpy-znp call spends its time (${r.mode} link)

Each call alone, as zigbee (in dialout, no sudo) on the node (\`lab.znp\`); the points in between come from
the dongle's frame log. *Start-up*: exec → the port opened (Python, imports); *port open*: →
the first request (zigpy-znp toggles DTR/RTS three times, 150 ms apart, before its ping);
*handshake*: ping, struct alignment probe, version detection; *transfer*: the tool's own requests;
*exit*: the last frame → the process has exited.

| call | requests | total s | start-up s | port open s | handshake s | transfer s | exit s |
|---|---|---|---|---|---|---|---|
${r.calls
  .map(
    ([name, p]) =>
      `| ${name} | ${p.requests} | ${seconds(p.total)} | ${seconds(p.startup)} | ${seconds(p.portOpen)} | ${seconds(p.handshake)} | ${seconds(p.transfer)} | ${seconds(p.exit)} |`,
  )
  .join("\n")}
${r.notes.map((n) => `\nNote: ${n}.`).join("")}
`
    : "";
  return `## ${r.mode === "instant" ? "Instant link" : "Realistic link"}

### Planned switchover: ours vs the reference vs the floor

${HEADER}
${row("ours: Zigbee outage (bridge/state offline → online, seen on MQTT)", r.ours.outage)}
${row("ours: total (operation)", r.ours.total)}
${row("reference (prototype script): Zigbee outage", r.reference.outage)}
${row("floor: stop + nvram_read + nvram_write + start → online", r.floorSums)}

| ratio of medians | value | goal |
|---|---|---|
| ours / reference | ${ratio(ours, ref)} | ≤ 0.70× |
| ours / floor | ${ratio(ours, floor)} | ≤ 1.25× |
| reference / floor | ${ratio(ref, floor)} | |
| failover outage / floor | ${ratio(failover, floor)} | ≤ 1.30× |

The old active's dongle still running the network after the switchover (a second coordinator on
the air): ours ${r.ours.oldOnAir} of ${r.ours.runs}, the reference ${r.reference.oldOnAir} of ${r.reference.runs}.${
    r.lateness
      ? ` The dongles' deliveries were on average ${r.lateness.meanMs.toFixed(2)} ms off the link's computed
schedule (${r.lateness.deliveries} deliveries since the dongles started).`
      : ""
  }

### Our switchover per step (A = old active, B = new active)

${HEADER}
${r.ours.steps.rows().join("\n")}

### The reference per step

${HEADER}
${r.reference.steps.rows().join("\n")}

### The floor's parts, each alone

${HEADER}
${r.floor.rows().join("\n")}
${calls}
### Unplanned failover (active's link cut, failover started at once)

${HEADER}
${row("total (operation)", r.failover.total)}
${row("Zigbee outage (link cut → new active online)", r.failover.outage)}

B was armed (its dongle already holding the network with its counter ahead, written by the sync
before; docs/failover.md, "Armed standbys") in ${r.failover.armed} of ${r.failover.runs} failovers.
Per step (A = the cut-off active, B = the new one):

${HEADER}
${r.failover.steps.rows().join("\n")}

The sync before each failover, its arming of B (outside the outage):

${HEADER}
${r.arming.rows().join("\n")}
${restructurings(r)}`;
}

/**
 * What is left above the floor, from this run's medians: the pipeline (docs/failover.md) prepares
 * B before the stop (its counter pre-raised), writes only what A's read shows changed (usually
 * nothing) with A parked beside it, syncs the data dir beside the read and installs it beside the
 * verification, which reads B again only when the outage wrote something.
 */
function restructurings(r: ModeResult): string {
  const step = (name: string) => r.ours.steps.median(name);
  const ours = median(r.ours.outage);
  const floor = median(r.floorSums);
  const verify = step("verify NVRAM on B and write its data dir");
  const park = step("verify NVRAM on B and write its data dir · park A (side by side)");
  const write = step("write NVRAM on B");
  const read = step("read NVRAM on A");
  const floorWrite = r.floor.median("nvram_write (zigpy-znp, as the SSH user)");
  const prepare = step("prepare NVRAM on B (before A stops)");
  return `
### Where our outage goes (${r.mode} link)

Inside the outage: read A ${seconds(read)} s; write B ${seconds(write)} s (only what A's read shows
changed since B was prepared with a pre-raised counter: in these runs ${r.ours.nothingWritten} of
${r.ours.total.length} switchovers wrote nothing; A's parking starts beside it) against the floor's
full nvram_write of ${seconds(floorWrite)} s; then the verification step ${seconds(verify)} s, which
waits for A's parking to end (parking alone ${seconds(park)} s after the write step) and reads B back
only when something was written. Ours − floor = ${seconds(ours - floor)} s. The preparation of B
(${seconds(prepare)} s, a read, the counter items written, a read back) runs before A stops and costs
no outage. What remains: the parking of A (a tool run: Python start-up, port open, one write and a
reset) sits between A's read and B's start, because B may start only once A no longer runs the
network; zigbee2mqtt's own clean stop (its coordinator backup) is in the floor too.
`;
}

function startupSection(
  s: Awaited<ReturnType<typeof startupParts>>,
  ssh: { connect: number; exec: number; fresh: number } | undefined,
): string {
  const ms = (v: number) => `${Math.round(v)} ms`;
  return `
## What every tool call pays before it talks to the dongle

The fastest of 5 runs on a node, as zigbee (the link mode does not matter here); SSH: medians.

| part | time |
|---|---|
| the lab's exec (nsenter into the node, setpriv, exec \`true\`) | ${ms(s.exec)} |
| Python start-up (\`python3 -c pass\`, the zigpy-znp virtualenv) | ${ms(s.python)} |
| importing zigpy-znp and its tool (\`python3 -m zigpy_znp.tools.nvram_read --help\`) | ${ms(s.imports)} |
${
  ssh
    ? `| SSH, a new connection + \`true\` (OpenSSH client from the controller) | ${ms(ssh.fresh)} |
| SSH, opening a connection (ssh2, as the sidecar) | ${ms(ssh.connect)} |
| SSH, one command on an open connection (ssh2, as the sidecar) | ${ms(ssh.exec)} |
`
    : ""
}`;
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
