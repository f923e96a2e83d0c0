import type { StagedManifest } from "../node/staging.js";
import type { NodeCheck } from "../types.js";
import { type ClusterContext, nodeOf, stagingOf } from "./context.js";

/** What one look at a node found. Fields a probe did not reach stay undefined. */
export interface NodeProbe {
  at: number;
  reachable: boolean;
  latency_ms?: number;
  error?: string;
  service?: "running" | "stopped" | "unknown";
  service_error?: string;
  /** The service manager reports a crash (the process died without being stopped). */
  service_crashed?: boolean;
  port_present?: boolean;
  /** `what` names the tools ("zigpy-znp tools"); absent in probes recorded before it existed. */
  tools?: { ok: boolean; detail: string; what?: string };
  free?: { data_dir?: number; staging_dir?: number };
  clock?: { offset_ms: number; precision_ms: number };
  staged?: StagedManifest | null;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - start) };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The quick look, every probe interval: can we run a command (reachable, latency), does the
 * service run, is the coordinator's port there. Bounded by the probe timeout as a whole.
 */
export async function quickProbe(cx: ClusterContext, id: string): Promise<NodeProbe> {
  const node = nodeOf(cx, id);
  const at = Date.now();
  const timeout = cx.config.monitor.probe_timeout;
  const work = (async (): Promise<NodeProbe> => {
    const ping = await timed(() => node.run(["true"], { timeoutMs: timeout }));
    if (ping.value.code !== 0)
      return { at, reachable: true, latency_ms: ping.ms, error: "`true` did not exit 0" };
    const probe: NodeProbe = { at, reachable: true, latency_ms: ping.ms };
    const [service, port] = await Promise.allSettled([node.serviceState(), node.portPresent()]);
    if (service.status === "fulfilled") {
      probe.service = service.value === "crashed" ? "stopped" : service.value;
      if (service.value === "crashed") probe.service_crashed = true;
    } else {
      probe.service = "unknown";
      probe.service_error = message(service.reason);
    }
    if (port.status === "fulfilled") probe.port_present = port.value;
    return probe;
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<NodeProbe>((resolve) => {
    timer = setTimeout(
      () => resolve({ at, reachable: false, error: `no answer within ${timeout} ms` }),
      timeout + 500,
    );
  });
  try {
    return await Promise.race([
      work.catch((error): NodeProbe => ({ at, reachable: false, error: message(error) })),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The thorough look (check, and now and then in monitoring): tools, disk, clock, staged copy. */
export async function fullProbe(cx: ClusterContext, id: string): Promise<NodeProbe> {
  const probe = await quickProbe(cx, id);
  if (!probe.reachable) return probe;
  const node = nodeOf(cx, id);
  const [tools, dataFree, stagingFree, clock, staged] = await Promise.allSettled([
    node.toolsPresent(),
    node.ssh.statvfs(node.config.data_dir),
    node.ssh.mkdirp(node.config.staging_dir).then(() => node.ssh.statvfs(node.config.staging_dir)),
    node.clockOffsetMs(),
    stagingOf(cx, id).read(),
  ]);
  probe.tools = tools.status === "fulfilled" ? tools.value : { ok: false, detail: message(tools.reason) };
  probe.free = {
    ...(dataFree.status === "fulfilled" ? { data_dir: dataFree.value.availableBytes } : {}),
    ...(stagingFree.status === "fulfilled" ? { staging_dir: stagingFree.value.availableBytes } : {}),
  };
  if (clock.status === "fulfilled")
    probe.clock = { offset_ms: clock.value.offsetMs, precision_ms: clock.value.precisionMs };
  probe.staged = staged.status === "fulfilled" ? (staged.value ?? null) : null;
  return probe;
}

const MiB = 1024 * 1024;

/** A probe as the list of named checks shown in status, check results and Home Assistant. */
export function checksOf(cx: ClusterContext, probe: NodeProbe): NodeCheck[] {
  const checks: NodeCheck[] = [
    {
      name: "ssh",
      ok: probe.reachable,
      detail: probe.reachable ? `answered in ${probe.latency_ms} ms` : (probe.error ?? "unreachable"),
    },
  ];
  if (!probe.reachable) return checks;
  if (probe.service)
    checks.push({
      name: "service",
      ok: probe.service !== "unknown",
      detail:
        probe.service === "unknown"
          ? (probe.service_error ?? "status unknown")
          : `zigbee2mqtt ${probe.service_crashed ? "crashed" : probe.service}`,
    });
  if (probe.port_present !== undefined)
    checks.push({
      name: "coordinator port",
      ok: probe.port_present,
      detail: probe.port_present ? "present" : "missing (dongle unplugged?)",
    });
  if (probe.tools) checks.push({ name: "zigpy-znp tools", ok: probe.tools.ok, detail: probe.tools.detail });
  if (probe.free) {
    for (const [dir, bytes] of Object.entries(probe.free)) {
      checks.push({
        name: `free space ${dir.replace("_", " ")}`,
        ok: bytes >= 10 * MiB,
        detail: `${Math.round(bytes / MiB)} MiB`,
      });
    }
  }
  if (probe.clock) {
    const skew = Math.abs(probe.clock.offset_ms);
    checks.push({
      name: "clock",
      ok: skew <= cx.config.monitor.clock_skew_warn + probe.clock.precision_ms,
      detail: `${probe.clock.offset_ms >= 0 ? "+" : ""}${probe.clock.offset_ms} ms against the controller`,
    });
  }
  return checks;
}
