/**
 * npm run soak -- [--switchovers N] [--keep-lab]: N planned switchovers in the lab, alternating
 * node1 ⇄ node2 with a sync between, every one checked (docs/reliability.md, "Soak"):
 * - exactly one coordinator on the air at every moment sampled (4 Hz, through the simulators);
 * - the network frame counter never lower: the new active resumes above anything any dongle used;
 * - the new active's NVRAM holds the old one's dump item for item, counters aside;
 * - nothing lost from the data dir: a file written into the active's data dir before each
 *   switchover (zigbee2mqtt never touches it) is on the new active byte for byte, all of them.
 * A benchmark, not a test: it reports; failures are listed by kind.
 */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import type { OperationRecord } from "../../sidecar/types.js";
import { SidecarApi } from "../lab/sidecar-api.js";
import { type HostId, Lab, REPO } from "../lab/world.js";
import {
  AirSampler,
  checkTakeover,
  countBy,
  highestCounter,
  log,
  machine,
  median,
  settle,
  type Violation,
  writeMarker,
  writeSection,
} from "./reliability.js";

function parseArgs(argv: string[]): { switchovers: number; keepLab: boolean } {
  const args = { switchovers: 100, keepLab: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--keep-lab") args.keepLab = true;
    else if (argv[i] === "--switchovers" && Number.isInteger(Number(argv[i + 1])))
      args.switchovers = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --switchovers N --keep-lab)`);
  }
  return args;
}

async function run(api: SidecarApi, kind: "sync" | "switchover", body: Record<string, unknown> = {}) {
  for (;;) {
    const { status, body: answer } = await api.request<OperationRecord>("POST", `/api/v1/${kind}`, body);
    if (status === 202) return api.finish(answer);
    // The sidecar's own sync (after zigbee2mqtt reported a change) holds the runner: wait for it.
    if (status === 409) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    throw new Error(`POST ${kind}: ${status} ${JSON.stringify(answer)}`);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  log("building the sidecar");
  execFileSync("npx", ["tsup", "--silent"], { cwd: REPO, stdio: "inherit" });
  log('bringing the lab up (lab "soak")');
  const lab = await Lab.up({ name: "soak", nodes: 2 });
  const violations: Violation[] = [];
  const outcomes: OperationRecord[] = [];
  const outages: number[] = [];
  const durations: number[] = [];
  const markers: { path: string; content: string }[] = [];
  const sampler = new AirSampler(lab);
  let settleFailures = 0;
  try {
    const configPath = lab.sidecarConfig({
      failover: { automatic: false },
      sync: { interval: "1h" },
      monitor: { probe_interval: "2s", failures: 3 },
      snmp: undefined,
    });
    const stateDir = join(dirname(configPath), "state");
    const sidecar = await lab.startSidecar(configPath);
    const api = new SidecarApi(sidecar.url, sidecar.token);
    sampler.start();
    try {
      await api.waitForStatus(
        "node1 active, both nodes probed",
        (s) => s.active === "node1" && s.nodes.every((n) => n.health !== "unknown"),
      );
      for (let i = 1; i <= args.switchovers; i++) {
        const from = (await api.status()).active as HostId;
        const to: HostId = from === "node1" ? "node2" : "node1";
        markers.push(await writeMarker(lab, from, i));
        const sync = await run(api, "sync");
        if (sync.status !== "succeeded")
          log(`sync before switchover ${i}: ${sync.status} ${sync.error?.message ?? ""}`);
        const counterBefore = await highestCounter(lab);
        const op = await run(api, "switchover", { target: to, reason: `soak ${i}/${args.switchovers}` });
        outcomes.push(op);
        if (op.status === "succeeded") {
          durations.push(op.duration_ms ?? 0);
          if (typeof op.result?.outage_ms === "number") outages.push(op.result.outage_ms);
          const found = await checkTakeover(lab, op, from, to, counterBefore, markers, stateDir);
          violations.push(...found);
        }
        const active = await settle(api, lab);
        if (!active) {
          settleFailures++;
          violations.push({
            at: new Date().toISOString(),
            kind: "did not settle",
            detail: `after ${op.id} (${op.status})`,
          });
        }
        log(
          `switchover ${i}/${args.switchovers} ${from} → ${to}: ${op.status}${op.error ? ` at "${op.error.step}": ${op.error.message.slice(0, 120)}` : ""}, ${((op.duration_ms ?? 0) / 1000).toFixed(1)} s; violations so far ${violations.length + sampler.violations.length}`,
        );
        if (!active) break;
      }
    } finally {
      sampler.stop();
      await sidecar.stop();
    }
  } finally {
    if (!args.keepLab) await lab.down();
  }
  const all = [...violations, ...sampler.violations];
  const failed = outcomes.filter((o) => o.status !== "succeeded");
  const byKind = countBy(
    failed,
    (o) => `${o.status} at ${o.steps.find((s) => s.status === "failed")?.key ?? o.error?.step ?? "?"}`,
  );
  const violationKinds = countBy(all, (v) => v.kind);
  const minutes = ((Date.now() - started) / 60_000).toFixed(0);
  const date = new Date().toISOString().slice(0, 10);
  writeSection(
    "## Soak: planned switchovers",
    `\`npm run soak -- --switchovers ${args.switchovers}\` on ${date}, ${minutes} min. Machine: ${machine()}.
Two nodes, alternating node1 ⇄ node2 with a sync before each switchover; real zigbee2mqtt, sshd and
zigpy-znp tools on simulated dongles.

| | |
|---|---|
| switchovers run | ${outcomes.length} of ${args.switchovers} |
| succeeded | ${outcomes.length - failed.length} |
| failed, by outcome and step | ${
      failed.length === 0
        ? "none"
        : Object.entries(byKind)
            .map(([k, n]) => `${k}: ${n}`)
            .join("; ")
    } |
| median switchover / Zigbee outage | ${(median(durations) / 1000).toFixed(1)} s / ${(median(outages) / 1000).toFixed(1)} s |
| on-air samples (4 Hz), moments with two coordinators | ${sampler.samples}, ${violationKinds["two coordinators"] ?? 0} |
| moments with another network on the air beside ours (zigpy-znp's throwaway formation in a network_restore, e.g. while a standby is armed) | ${sampler.otherNetworkSamples} |
| new active's counter not above everything used before | ${violationKinds["counter lower"] ?? 0} |
| NVRAM differing from the old active's dump (counters aside) | ${violationKinds["nvram differs"] ?? 0} |
| marker files lost or changed (${markers.length} written, all checked after each switchover) | ${violationKinds["data lost"] ?? 0} |
| cluster not at rest within 4 min after a switchover | ${settleFailures} |

${
  all.length === 0
    ? "No violation."
    : `Violations:\n\n${all
        .slice(0, 30)
        .map((v) => `- ${v.at} ${v.kind}: ${v.detail}`)
        .join("\n")}`
}
`,
  );
  log(
    `done: ${outcomes.length} switchovers, ${failed.length} failed, ${all.length} violations; docs/reliability.md written`,
  );
  if (all.length > 0 || failed.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
