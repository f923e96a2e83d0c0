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
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if (flag === "--keep-lab") args.keepLab = true;
    else if (flag === "--switchovers") (args.switchovers = value), i++;
    else if (flag === "--failovers") (args.failovers = value), i++;
    else if (flag === "--detections") (args.detections = value), i++;
    else if (flag === "--parts") (args.parts = value), i++;
    else throw new Error(`unknown argument ${flag}`);
  }
  return args;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

class Api {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async finish(op: OperationRecord, timeoutMs = 300_000): Promise<OperationRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await this.call<OperationRecord>("GET", `/api/v1/operations/${op.id}`);
      if (current.status !== "running") return current;
      if (Date.now() > deadline) throw new Error(`${op.kind} ${op.id} did not finish`);
      await sleep(200);
    }
  }

  async status() {
    return this.call<{
      active: string | null;
      nodes: { id: string; health: string }[];
      alerts: { kind: string; node?: string }[];
      running_operation: OperationRecord | null;
    }>("GET", "/api/v1/status");
  }

  async waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(250);
    }
  }

  async waitIdle(): Promise<void> {
    await this.waitFor("no running operation", async () => (await this.status()).running_operation === null);
  }

  /** Resolves with the time the first event of `type` matching `accept` arrives. */
  event(
    type: string,
    accept: (data: Record<string, unknown>) => boolean,
    timeoutMs = 120_000,
  ): Promise<number> {
    const controller = new AbortController();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
      void fetch(`${this.url}/api/v1/events`, {
        headers: { authorization: `Bearer ${this.token}` },
        signal: controller.signal,
      })
        .then(async (res) => {
          const decoder = new TextDecoder();
          let buffer = "";
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += decoder.decode(chunk, { stream: true });
            let end = buffer.indexOf("\n\n");
            while (end >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const event = /^event: (.*)$/m.exec(frame)?.[1];
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              if (event === type && data && accept(JSON.parse(data))) {
                const at = Date.now();
                clearTimeout(timer);
                controller.abort();
                resolve(at);
                return;
              }
              end = buffer.indexOf("\n\n");
            }
          }
        })
        .catch((error: Error) => {
          if (error.name !== "AbortError") reject(error);
        });
    });
  }
}

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
    const api = new Api(sidecar.url, sidecar.token);
    const watcher = await outageWatcher(lab);
    try {
      await api.waitFor("node1 active and node2 ready", async () => {
        const s = await api.status();
        return s.active === "node1" && s.nodes.some((n) => n.id === "node2" && n.health !== "unknown");
      });
      await api.finish(await api.call<OperationRecord>("POST", "/api/v1/sync", {}));

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
        await api.finish(await api.call<OperationRecord>("POST", "/api/v1/sync", {}));
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
        await api.waitFor(`${from} back as a plain standby`, async () => {
          const s = await api.status();
          const node = s.nodes.find((n) => n.id === from);
          return node?.health === "standby-ready" || node?.health === "standby-not-ready";
        });
        await api.waitIdle();
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
      const dapi = new Api(detector.url, detector.token);
      await dapi.waitFor("the sidecar sees the active", async () => (await dapi.status()).active !== null);
      const current = (await dapi.status()).active as HostId;
      const downAlert = (d: Record<string, unknown>) =>
        (d.alert as { kind?: string })?.kind === "active_down";
      for (let i = 0; i < args.detections; i++) {
        log(`detection ${i + 1}/${args.detections}: SIGKILL zigbee2mqtt`);
        const seen = dapi.event("alert.raised", downAlert);
        const t = Date.now();
        await lab.fault("kill-zigbee2mqtt", current);
        detection.crash.push((await seen) - t);
        await lab.service(current, "zap");
        await lab.service(current, "start");
        await lab.waitForZigbee2mqtt(current);
        await dapi.waitFor(
          "recovered",
          async () => !(await dapi.status()).alerts.some((a) => a.kind === "active_down"),
        );
      }
      for (let i = 0; i < args.detections; i++) {
        log(`detection ${i + 1}/${args.detections}: cut link`);
        const seen = dapi.event("alert.raised", downAlert);
        const t = Date.now();
        await lab.fault("cut-link", current);
        detection.link.push((await seen) - t);
        await lab.fault("restore-link", current);
        await dapi.waitFor(
          "recovered",
          async () => !(await dapi.status()).alerts.some((a) => a.kind === "active_down"),
        );
      }
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
The failover policy then waits \`failover.grace\` (30 s by default) before acting.

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
