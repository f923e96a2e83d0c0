import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import {
  backupExtendedPanId,
  backupIeee,
  raiseBackupCounters,
  z2mBackup,
} from "../../../sidecar/cluster/coordinators/z2m-backup.js";
import type { TakeoverContext } from "../../../sidecar/cluster/operations/takeover-context.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import { parseBackup } from "../../../sidecar/coordinator/backup.js";
import { SnapshotStore } from "../../../sidecar/store/snapshots.js";
import { StateStore } from "../../../sidecar/store/state.js";
import type { OperationRecord } from "../../../sidecar/types.js";
import { unreachableNodes } from "../../helpers/sidecar.js";

const backup = parseBackup(
  JSON.stringify({
    metadata: {
      format: "zigpy/open-coordinator-backup",
      version: 1,
      internal: { date: "2026-12-01T00:00:00Z" },
    },
    coordinator_ieee: "a1b2c3fffe040506",
    pan_id: "1a62",
    extended_pan_id: "dddddddddddddddd",
    channel: 15,
    network_key: { key: "01030507090b0d0f00020406080a0c0d", sequence_number: 0, frame_counter: 10_000 },
    devices: [
      {
        nwk_address: "5f",
        ieee_address: "00158d0001a2b3c4",
        link_key: { key: "aa", rx_counter: 3, tx_counter: 40 },
      },
      { nwk_address: "60", ieee_address: "00158d0001a2b3c5" },
    ],
  }),
);

describe("a backup's counters raised for a restore", () => {
  it("puts the network key's counter on the target and lifts every link key's transmit counter as much", () => {
    const raised = raiseBackupCounters(backup, 12_500);
    expect(raised.network_key.frame_counter).toBe(12_500);
    const [keyed, keyless] = raised.devices as Array<{
      link_key?: { tx_counter: number; rx_counter: number };
    }>;
    expect(keyed?.link_key).toMatchObject({ tx_counter: 2_540, rx_counter: 3 });
    expect(keyless?.link_key).toBeUndefined();
    // The backup it came from is not changed.
    expect(backup.network_key.frame_counter).toBe(10_000);
  });

  it("never lowers a counter, and refuses a target past 2^32 instead of wrapping", () => {
    expect(raiseBackupCounters(backup, 5).network_key.frame_counter).toBe(10_000);
    expect(() => raiseBackupCounters(backup, 0x1_0000_0000)).toThrow(/counter/i);
    const nearTop = raiseBackupCounters(backup, 0xffff_fff0);
    const linkKey = (nearTop.devices[0] as unknown as { link_key: { tx_counter: number } }).link_key;
    expect(linkKey.tx_counter).toBeLessThanOrEqual(0xffff_ffff);
  });
});

describe("the network's IEEE in a backup", () => {
  it("is as written for Z-Stack, byte-reversed for herdsman's ember adapter", () => {
    expect(backupIeee(backup, "zstack")).toBe("0xa1b2c3fffe040506");
    expect(backupIeee(backup, "ember")).toBe("0x060504feffc3b2a1");
    // herdsman's ember backup reverses the extended PAN ID as well (seen in the lab).
    const ember = parseBackup(
      JSON.stringify({ ...JSON.parse(JSON.stringify(backup)), extended_pan_id: "b60e0c0171892b5e" }),
    );
    expect(backupExtendedPanId(ember, "ember")).toBe("0x5e2b8971010c0eb6");
    expect(backupExtendedPanId(ember, "zstack")).toBe("0xb60e0c0171892b5e");
  });
});

function config(coordinators: Array<Record<string, unknown>>) {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-coord-"));
  const nodes = unreachableNodes().map((node, i) => ({ ...node, coordinator: coordinators[i] ?? {} }));
  return parseConfig(stringify({ state_dir: dir, mqtt: { url: "mqtt://127.0.0.1:1" }, nodes }));
}

describe("coordinator config", () => {
  it("defaults to zstack-nvram with zigpy-znp's tools; an ember adapter runs the tool with node", () => {
    expect(config([]).nodes[0]?.coordinator).toMatchObject({
      type: "zstack-nvram",
      adapter: "zstack",
      tools: ["python3", "-m", "zigpy_znp.tools"],
    });
    const ember = config([
      { type: "z2m-backup", adapter: "ember", port: "tcp://192.0.2.7:6638" },
      {
        type: "z2m-backup",
        adapter: "ember",
        port: "/dev/serial/by-id/usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2-if00",
      },
    ]);
    expect(ember.nodes[0]?.coordinator).toMatchObject({
      tools: ["node"],
      port: "tcp://192.0.2.7:6638",
      baudrate: 115200,
    });
  });

  it("refuses an NVRAM copy of an ember dongle, mixed types or adapters, and a port that is neither a path nor tcp://", () => {
    expect(() => config([{ type: "zstack-nvram", adapter: "ember" }])).toThrow(
      /nodes\[0\]\.coordinator\.adapter.*use type z2m-backup/,
    );
    expect(() => config([{ type: "z2m-backup" }, { type: "zstack-nvram" }])).toThrow(
      /nodes\[1\]\.coordinator\.type.*same coordinator type/,
    );
    expect(() =>
      config([
        { type: "z2m-backup", adapter: "ember" },
        { type: "z2m-backup", adapter: "zstack" },
      ]),
    ).toThrow(/nodes\[1\]\.coordinator\.adapter/);
    expect(() => config([{ port: "ttyUSB0" }])).toThrow(/nodes\[0\]\.coordinator\.port.*tcp:\/\/host:port/);
    expect(() => config([{ port: "tcp://host" }])).toThrow(/nodes\[0\]\.coordinator\.port/);
  });
});

// ---- the driver's procedures against fake nodes (the ember tool's answers, no SSH) ----------

interface FakeDongle {
  eui64: string;
  custom: string | null;
  network: { pan_id: number; extended_pan_id: string; channel: number; nwk_frame_counter: number } | null;
}

function driverWorld(dongles: Record<string, FakeDongle>) {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-z2mb-"));
  const coordinator = { type: "z2m-backup", adapter: "ember", port: "/dev/ttyACM0" };
  const parsed = parseConfig(
    stringify({
      state_dir: dir,
      mqtt: { url: "mqtt://127.0.0.1:1" },
      nodes: unreachableNodes().map((n) => ({ ...n, coordinator })),
    }),
  );
  const calls: string[] = [];
  const written = new Map<string, string>();
  const snapshots = new SnapshotStore(dir);
  const state = new StateStore(dir);
  const nodes = new Map(
    parsed.nodes.map((config) => [
      config.id,
      {
        id: config.id,
        config,
        serviceState: async () => "stopped",
        portReachable: async () => true,
        toolsPresent: async () => ({ ok: true, what: "Node.js for the ember tool", detail: "node v20.20.2" }),
        ssh: {
          writeFileAtomic: async (path: string, data: string) => {
            written.set(path, data);
            return {};
          },
        },
        emberTool: async (command: string, args: string[]) => {
          calls.push(`${config.id} ${command} ${args.join(" ")}`.trim());
          const dongle = dongles[config.id] as FakeDongle;
          if (command === "info")
            return {
              eui64: dongle.custom ?? dongle.eui64,
              custom_eui64: dongle.custom,
              ...(args.includes("--no-network") ? {} : { network: dongle.network }),
            };
          if (command === "wipe") {
            const had = dongle.network !== null;
            dongle.network = null;
            return { wiped: true, had_network: had };
          }
          if (command === "set-eui64") {
            const wanted = args[1] as string;
            if (dongle.custom && dongle.custom !== wanted) throw new Error("already written");
            const writtenNow = dongle.custom !== wanted;
            dongle.custom = wanted;
            return { eui64: wanted, written: writtenNow };
          }
          if (command === "park") return { parked: true };
          throw new Error(`unexpected ${command}`);
        },
      },
    ]),
  );
  const cx = {
    config: parsed,
    state,
    snapshots,
    nodes,
    logger: pino({ level: "silent" }),
    watcher: { status: () => ({ coordinator_ieee: "0x060504feffc3b2a1" }) },
    unreachable: () => false,
  } as unknown as ClusterContext;
  // The controller's newest data snapshot holds node1's backup (herdsman's ember byte order).
  const text = Buffer.from(JSON.stringify(backup));
  const sha = snapshots.putObject(text);
  snapshots.saveData({
    created_at: new Date().toISOString(),
    node: "node1",
    operation_id: "op-0",
    files: [{ path: "coordinator_backup.json", sha256: sha, size: text.length, mtime_ms: 0, mode: 0o644 }],
  });
  return { cx, calls, written, state };
}

function takeoverContext(to: string): TakeoverContext {
  return {
    kind: "switchover",
    from: "node1",
    to,
    expected: {
      ieee: "0x060504feffc3b2a1",
      pan_id: 0x1a62,
      extended_pan_id: "0xdddddddddddddddd",
      channel: 15,
    },
    committed: false,
    stoppedFrom: false,
    touchedTo: false,
    startedTo: false,
    outage: {},
    notes: [],
  };
}

const io = (ctx: TakeoverContext) => ({
  ctx,
  signal: new AbortController().signal,
  op: { id: "op-1" } as OperationRecord,
});

describe("the z2m-backup driver with an ember dongle", () => {
  const network = {
    pan_id: 0x1a62,
    extended_pan_id: "dddddddddddddddd",
    channel: 15,
    nwk_frame_counter: 900,
  };

  it("prepares a target holding an older copy: writes its blank EUI64 token with the network's, then wipes it unread", async () => {
    const { cx, calls } = driverWorld({
      node1: { eui64: "060504feffc3b2a1", custom: null, network },
      node2: { eui64: "8c65a3fffe112233", custom: null, network },
    });
    const ctx = takeoverContext("node2");
    const prepare = z2mBackup
      .switchoverSteps(cx, ctx)
      .prepare.find((s) => s.key === "prepare-target-coordinator");
    const detail = await prepare?.run(io(ctx));
    // Reading its network would start it beside node1's: the identity only, then a quiet wipe.
    expect(calls).toEqual([
      "node2 info --no-network",
      "node2 set-eui64 --eui64 060504feffc3b2a1",
      "node2 wipe",
    ]);
    expect(detail).toMatch(
      /custom EUI64 token written with 0x060504feffc3b2a1 .*; wiped without starting what it held/,
    );
    expect(ctx.touchedTo).toBe(true);
  });

  it("writes no token on a dongle that already carries the network's EUI64, and wipes it unread", async () => {
    const { cx, calls } = driverWorld({
      node1: { eui64: "060504feffc3b2a1", custom: null, network },
      node2: { eui64: "8c65a3fffe112233", custom: "060504feffc3b2a1", network: null },
    });
    const ctx = takeoverContext("node2");
    const detail = await z2mBackup
      .switchoverSteps(cx, ctx)
      .prepare.find((s) => s.key === "prepare-target-coordinator")
      ?.run(io(ctx));
    expect(calls).toEqual(["node2 info --no-network", "node2 wipe"]);
    expect(detail).toBe("wiped without starting what it held: zigbee2mqtt restores onto a blank dongle");
  });

  it("refuses at preflight a dongle whose one-time EUI64 token holds another value", async () => {
    const { cx } = driverWorld({
      node1: { eui64: "060504feffc3b2a1", custom: null, network },
      node2: { eui64: "8c65a3fffe112233", custom: "0011223344556677", network: null },
    });
    expect(await z2mBackup.preflight(cx, "node2")).toEqual([
      expect.stringMatching(
        /cannot carry the network's EUI64 0x060504feffc3b2a1: its one-time custom EUI64 token already holds 0x0011223344556677/,
      ),
    ]);
  });

  it("retires a copy: reads how far its counter got, then wipes it", async () => {
    const { cx, calls } = driverWorld({
      node1: { eui64: "060504feffc3b2a1", custom: null, network },
      node2: { eui64: "8c65a3fffe112233", custom: null, network: { ...network, nwk_frame_counter: 15_000 } },
    });
    expect(await z2mBackup.retire(cx, "node2", new AbortController().signal, [])).toBe(15_000);
    expect(calls).toEqual(["node2 info", "node2 wipe"]);
  });

  it("raises a counter by giving the node its own backup back, raised, and a wiped dongle", async () => {
    const { cx, calls, written, state } = driverWorld({
      node1: { eui64: "060504feffc3b2a1", custom: null, network },
      node2: { eui64: "8c65a3fffe112233", custom: null, network: null },
    });
    const detail = await z2mBackup.raiseCounter(cx, "node1", 20_000, new AbortController().signal, []);
    expect(detail).toMatch(/coordinator_backup.json raised to frame counter 22500/);
    expect(calls).toEqual(["node1 wipe"]);
    const file = written.get("/opt/zigbee2mqtt/data/coordinator_backup.json");
    expect(JSON.parse(file ?? "{}").network_key.frame_counter).toBe(22_500);
    expect(state.get().frame_counter_issued).toMatchObject({ node: "node1", counter: 22_500 });
  });
});
