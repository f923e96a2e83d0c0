/**
 * npm run bench: switchover and failover timings in the lab, written to docs/benchmarks.md.
 *
 *   npm run bench -- [--switchovers K] [--failovers K] [--detections K] [--parts K] [--keep-lab]
 *
 * Measures, with the real zigbee2mqtt, sshd and zigpy-znp tools on simulated dongles:
 * - planned switchovers alternating between node1 and node2: every step, the total, and the Zigbee
 *   outage seen on MQTT (bridge/state offline → online), as the bench's own subscriber sees it;
 * - unplanned failovers after the active's link is cut (started by hand at once, so the takeover
 *   itself is timed; detection is measured separately);
 * - the irreducible parts alone (service stop, nvram_read, nvram_write, start-to-online), so the
 *   orchestration's overhead is visible;
 * - detection latency of the monitoring: a zigbee2mqtt crash (SIGKILL) and a cut link, from the
 *   fault to the sidecar's active_down alert on its event stream.
 * Timings are measurements, never assertions.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { OperationRecord } from "../../sidecar/types.js";
import { SidecarApi } from "../lab/sidecar-api.js";
import { type HostId, Lab, REPO } from "../lab/world.js";

interface Args {
  switchovers: number;
  failovers: number;
  detections: number;
  parts: number;
  keepLab: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { switchovers: 6, failovers: 4, detections: 5, parts: 3, keepLab: false };
  const counts: Record<string, "switchovers" | "failovers" | "detections" | "parts"> = {
    "--switchovers": "switchovers",
    "--failovers": "failovers",
    "--detections": "detections",
    "--parts": "parts",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const key = counts[flag];
    if (flag === "--keep-lab") args.keepLab = true;
    else if (key && Number.isInteger(Number(argv[i + 1]))) args[key] = Number(argv[++i]);
    else
      throw new Error(
        `unknown argument ${flag} (use --switchovers K --failovers K --detections K --parts K --keep-lab)`,
      );
  }
  return args;
}

function stats(values: number[]): { median: number; min: number; max: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, n: sorted.length };
}

function seconds(ms: number): string {
  return Number.isNaN(ms) ? "–" : (ms / 1000).toFixed(2);
}

function row(name: string, values: number[]): string {
  const s = stats(values);
  return `| ${name} | ${s.n} | ${seconds(s.median)} | ${seconds(s.min)} | ${seconds(s.max)} |`;
}

const HEADER = "| | n | median s | min s | max s |\n|---|---|---|---|---|";

/** Watches bridge/state on the lab's broker and reports offline → online outages. */
async function outageWatcher(lab: Lab) {
  const client = await lab.mqtt();
  let offlineAt: number | undefined;
  const outages: number[] = [];
  await client.subscribeAsync("zigbee2mqtt/bridge/state");
  client.on("message", (_topic, payload) => {
    const text = payload.toString();
    const state = text.includes("offline") ? "offline" : text.includes("online") ? "online" : undefined;
    if (state === "offline" && offlineAt === undefined) offlineAt = Date.now();
    if (state === "online" && offlineAt !== undefined) {
      outages.push(Date.now() - offlineAt);
      offlineAt = undefined;
    }
  });
  return {
    take(): number | undefined {
      return outages.shift();
    },
    reset() {
      outages.length = 0;
      offlineAt = undefined;
    },
    async close() {
      await client.endAsync();
    },
  };
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const kernel = execFileSync("uname", ["-r"]).toString().trim();
  const os = execFileSync("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"]).toString().trim();
  return `${os}, kernel ${kernel}, ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  log("building the sidecar");
  execFileSync("npx", ["tsup", "--silent"], { cwd: REPO, stdio: "inherit" });
  log('bringing the lab up (lab "bench")');
  const lab = await Lab.up({ name: "bench", nodes: 2 });
  const stepTimes = new Map<string, number[]>();
  const totals = { switchover: [] as number[], failover: [] as number[] };
  const outages = { switchover: [] as number[], failover: [] as number[] };
  const parts = {
    stop: [] as number[],
    nvram_read: [] as number[],
    nvram_write: [] as number[],
    start_to_online: [] as number[],
  };
  const detection = { crash: [] as number[], link: [] as number[] };
  const failures: string[] = [];
  try {
    const config = lab.sidecarConfig({
      failover: { automatic: false },
      sync: { interval: "1h" },
      monitor: { probe_interval: "2s", failures: 3 },
      snmp: undefined,
    });
    const sidecar = await lab.startSidecar(config);
    const api = new SidecarApi(sidecar.url, sidecar.token);
    const watcher = await outageWatcher(lab);
    try {
      await api.waitForStatus(
        "node1 active and node2 probed",
        (s) => s.active === "node1" && s.nodes.some((n) => n.id === "node2" && n.health !== "unknown"),
      );
      await api.run("sync");

      for (let i = 0; i < args.switchovers; i++) {
        const before = (await api.status()).active;
        const target = before === "node1" ? "node2" : "node1";
        watcher.reset();
        log(`switchover ${i + 1}/${args.switchovers}: ${before} → ${target}`);
        const op = await api.finish(
          await api.call<OperationRecord>("POST", "/api/v1/switchover", { target }),
        );
        if (op.status !== "succeeded") {
          failures.push(`switchover ${op.id}: ${op.status} ${op.error?.message ?? ""}`);
          continue;
        }
        totals.switchover.push(op.duration_ms ?? 0);
        for (const step of op.steps) {
          const key = step.name.replace(/node\d+/g, (m) => (m === before ? "A" : m === target ? "B" : m));
          stepTimes.set(key, [...(stepTimes.get(key) ?? []), step.duration_ms ?? 0]);
        }
        const outage = watcher.take();
        if (outage !== undefined) outages.switchover.push(outage);
      }

      for (let i = 0; i < args.failovers; i++) {
        const from = (await api.status()).active as HostId;
        const to = from === "node1" ? "node2" : "node1";
        await api.run("sync");
        watcher.reset();
        log(`failover ${i + 1}/${args.failovers}: cut ${from}'s link, take over on ${to}`);
        const cut = Date.now();
        await lab.fault("cut-link", from);
        const op = await api.finish(
          await api.call<OperationRecord>("POST", "/api/v1/failover", { target: to }),
        );
        const onlineAt = Date.now();
        if (op.status !== "succeeded")
          failures.push(`failover ${op.id}: ${op.status} ${op.error?.message ?? ""}`);
        else {
          totals.failover.push(op.duration_ms ?? 0);
          // The broker may not publish the cut node's will before the new active is online:
          // the outage is from the cut to the new active's online.
          outages.failover.push(onlineAt - cut);
        }
        await lab.fault("restore-link", from);
        await api.waitForStatus(`${from} back as a plain standby`, (s) => {
          const node = s.nodes.find((n) => n.id === from);
          const standby = node?.health === "standby-ready" || node?.health === "standby-not-ready";
          return standby && s.running_operation === null;
        });
      }

      log("irreducible parts");
      const active = (await api.status()).active as HostId;
      const standby: HostId = active === "node1" ? "node2" : "node1";
      await api.call("PUT", "/api/v1/automation", { maintenance: true });
      for (let i = 0; i < args.parts; i++) {
        let t = Date.now();
        await lab.service(active, "stop");
        parts.stop.push(Date.now() - t);
        t = Date.now();
        const read = await lab.znp(active, "nvram_read", ["-o", "/home/zigbee/bench-nvram.json"]);
        parts.nvram_read.push(Date.now() - t);
        if (read.code !== 0) failures.push(`nvram_read: ${read.stderr.slice(-300)}`);
        const dump = await lab.readFile(active, "/home/zigbee/bench-nvram.json");
        await lab.writeFile(standby, "/home/zigbee/bench-nvram.json", dump, { user: "zigbee" });
        t = Date.now();
        const write = await lab.znp(standby, "nvram_write", ["-i", "/home/zigbee/bench-nvram.json"]);
        parts.nvram_write.push(Date.now() - t);
        if (write.code !== 0) failures.push(`nvram_write: ${write.stderr.slice(-300)}`);
        t = Date.now();
        await lab.service(active, "start");
        await lab.waitForZigbee2mqtt(active);
        parts.start_to_online.push(Date.now() - t);
      }
      // The standby's dongle now holds a copy that no switchover verified: give it a blank one.
      await lab.znp(standby, "nvram_reset");
      await api.call("PUT", "/api/v1/automation", { maintenance: false });
      await sidecar.stop();

      log("detection latency");
      const detectConfig = lab.sidecarConfig({
        failover: { automatic: true, grace: "10m", restart_attempts: 0 },
        sync: { interval: "1h" },
        monitor: { probe_interval: "3s", failures: 3 },
        snmp: undefined,
      });
      const detector = await lab.startSidecar(detectConfig);
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
      for (let i = 0; i < args.detections; i++) {
        log(`detection ${i + 1}/${args.detections}: SIGKILL zigbee2mqtt`);
        const t = Date.now();
        await lab.fault("kill-zigbee2mqtt", current);
        detection.crash.push(await detected(t));
        await lab.service(current, "zap");
        await lab.service(current, "start");
        await lab.waitForZigbee2mqtt(current);
        await recovered();
      }
      for (let i = 0; i < args.detections; i++) {
        log(`detection ${i + 1}/${args.detections}: cut link`);
        const t = Date.now();
        await lab.fault("cut-link", current);
        detection.link.push(await detected(t));
        await lab.fault("restore-link", current);
        await recovered();
      }
      events.stop();
      await detector.stop();
    } finally {
      await watcher.close();
      await sidecar.stop();
    }
  } finally {
    if (!args.keepLab) await lab.down();
  }

  const date = new Date().toISOString().slice(0, 10);
  const stepRows = [...stepTimes.entries()].map(([name, values]) => row(name, values));
  const text = `# Benchmarks

Measured by \`npm run bench\` in the lab (real zigbee2mqtt 2.14.1, sshd, Mosquitto and zigpy-znp 1.1.1
tools; simulated CC2652 dongles behind a pty) on ${date}.
Machine: ${machine()}.
Median, min and max over n runs, in seconds. The bench measures; no test asserts on these numbers.

## Planned switchover (node1 ⇄ node2, alternating)

${HEADER}
${row("total (operation)", totals.switchover)}
${row("Zigbee outage (bridge/state offline → online, seen on MQTT)", outages.switchover)}

### Per step (A = old active, B = new active)

${HEADER}
${stepRows.join("\n")}

## Unplanned failover (active's link cut, failover started at once)

${HEADER}
${row("total (operation)", totals.failover)}
${row("Zigbee outage (link cut → new active online)", outages.failover)}

## The irreducible parts alone

What any switchover must do, run by hand on the same lab: the orchestration's overhead is the
switchover total minus these.

${HEADER}
${row("service stop (rc-service zigbee2mqtt stop)", parts.stop)}
${row("nvram_read (zigpy-znp, through sudo)", parts.nvram_read)}
${row("nvram_write (zigpy-znp, through sudo)", parts.nvram_write)}
${row("service start → bridge/state online", parts.start_to_online)}

## Detection latency (monitoring)

From the fault to the sidecar's \`active_down\` alert on its event stream, with
\`monitor.probe_interval: 3s\`, \`monitor.failures: 3\` (the defaults), \`probe_timeout: 2.5s\`.
A crash is on MQTT at once (the last will), but the alert waits for a probe to agree that the
service is down: up to one probe interval. A cut link takes \`failures\` unanswered probes, then an
unanswered health check (2.5 s). The failover policy then waits \`failover.grace\` (30 s by default) before acting.

${HEADER}
${row("zigbee2mqtt crash (SIGKILL; MQTT last will)", detection.crash)}
${row("link cut (probes, then a health check on MQTT)", detection.link)}
${failures.length ? `\n## Failures during this run\n\n${failures.map((f) => `- ${f}`).join("\n")}\n` : ""}`;
  writeFileSync(join(REPO, "docs", "benchmarks.md"), text);
  process.stdout.write(text);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
