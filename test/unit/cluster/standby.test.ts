import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import { withTool } from "../../../sidecar/cluster/operations/common.js";
import {
  armedWith,
  backupContentKey,
  type RestoreSource,
} from "../../../sidecar/cluster/operations/coordinator-state.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import { parseBackup } from "../../../sidecar/coordinator/backup.js";
import { StateStore } from "../../../sidecar/store/state.js";
import { unreachableNodes } from "../../helpers/sidecar.js";

const backup = {
  metadata: {
    format: "zigpy/open-coordinator-backup",
    version: 1,
    source: "zigbee-herdsman@10.9.2",
    internal: { date: "2026-11-26T10:00:00.000Z" },
  },
  coordinator_ieee: "00124b001e17efa8",
  pan_id: "1a2",
  extended_pan_id: "dddddddddddddddd",
  channel: 15,
  network_key: { key: "01030507090b0d0f00020406080a0c0d", sequence_number: 0, frame_counter: 123456 },
  devices: [
    {
      nwk_address: "5f",
      ieee_address: "00158d0001a2b3c4",
      link_key: { key: "aa", rx_counter: 3, tx_counter: 10 },
    },
  ],
};

const keyOf = (value: unknown) => backupContentKey(parseBackup(JSON.stringify(value)));

describe("a backup's content key", () => {
  it("ignores its date and every frame counter", () => {
    const later = structuredClone(backup);
    later.metadata.internal.date = "2026-11-27T11:00:00.000Z";
    later.network_key.frame_counter = 999_999;
    const device = later.devices[0] as (typeof later.devices)[number];
    device.link_key = { ...device.link_key, rx_counter: 77, tx_counter: 88 };
    expect(keyOf(later)).toBe(keyOf(backup));
  });

  it("changes with a device, a key or the network", () => {
    const joined = structuredClone(backup);
    joined.devices.push({
      nwk_address: "60",
      ieee_address: "00158d0001a2b3c5",
      link_key: joined.devices[0]!.link_key,
    });
    const rekeyed = structuredClone(backup);
    rekeyed.network_key.key = "ff030507090b0d0f00020406080a0c0d";
    const moved = structuredClone(backup);
    moved.channel = 20;
    const keys = new Set([keyOf(backup), keyOf(joined), keyOf(rekeyed), keyOf(moved)]);
    expect(keys.size).toBe(4);
  });
});

function world() {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-standby-"));
  const config = parseConfig(
    stringify({ state_dir: dir, mqtt: { url: "mqtt://127.0.0.1:1" }, nodes: unreachableNodes() }),
  );
  const state = new StateStore(dir);
  const cx = {
    config,
    state,
    logger: pino({ level: "silent" }),
    nodes: new Map(config.nodes.map((n) => [n.id, { id: n.id, config: n }])),
  } as unknown as ClusterContext;
  const port = config.nodes[1]?.coordinator.port as string;
  const source: RestoreSource = {
    key: "backup:abc",
    label: "coordinator_backup.json (data-1)",
    identity: {
      ieee: "0x00124b001e17efa8",
      pan_id: 0x1a2,
      extended_pan_id: "0xdddddddddddddddd",
      channel: 15,
    },
    facts: [],
  };
  const arm = (overrides: Partial<NonNullable<ReturnType<typeof state.get>["armed"]>[string]> = {}) =>
    state.update((s) => {
      s.armed = {
        node2: {
          at: new Date().toISOString(),
          source: "backup:abc",
          extended_pan_id: "0xdddddddddddddddd",
          counter: 50_000,
          port,
          operation_id: "op-1",
          ...overrides,
        },
      };
    });
  return { cx, state, source, arm };
}

describe("an armed standby", () => {
  it("counts only with the same content, network and port, and a counter high enough", () => {
    const { cx, source, arm } = world();
    expect(armedWith(cx, "node2", source, 1)).toBeUndefined();
    arm();
    expect(armedWith(cx, "node2", source, 50_000)?.counter).toBe(50_000);
    expect(armedWith(cx, "node2", source, 50_001)).toBeUndefined();
    expect(armedWith(cx, "node1", source, 1)).toBeUndefined();
    arm({ source: "backup:other" });
    expect(armedWith(cx, "node2", source, 1)).toBeUndefined();
    arm({ extended_pan_id: "0x1111111111111111" });
    expect(armedWith(cx, "node2", source, 1)).toBeUndefined();
    arm({ port: "/dev/serial/by-id/another-dongle" });
    expect(armedWith(cx, "node2", source, 1)).toBeUndefined();
  });

  it("is forgotten as soon as a tool that writes its dongle runs, not by reads or parking", async () => {
    const { cx, state, arm } = world();
    const signal = new AbortController().signal;
    arm();
    await withTool(cx, "node2", "nvram_read", signal, async () => "{}");
    await withTool(cx, "node2", "park the coordinator", signal, async () => "NWKKEY");
    expect(state.get().armed?.node2).toBeDefined();
    // Even a write that fails may have changed the dongle (aborted: no retries).
    const cut = new AbortController();
    await expect(
      withTool(cx, "node2", "nvram_reset", cut.signal, async () => {
        cut.abort();
        throw new Error("gone");
      }),
    ).rejects.toThrow();
    expect(state.get().armed?.node2).toBeUndefined();
    for (const tool of ["nvram_write", "network_restore"]) {
      arm();
      await withTool(cx, "node2", tool, signal, async () => undefined);
      expect(state.get().armed?.node2, tool).toBeUndefined();
    }
  });
});

describe("failover.arm_horizon", () => {
  it("must be at least a minute", () => {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-standby-"));
    expect(() =>
      parseConfig(
        stringify({
          state_dir: dir,
          mqtt: { url: "mqtt://127.0.0.1:1" },
          nodes: unreachableNodes(),
          failover: { arm_horizon: "30s" },
        }),
      ),
    ).toThrow(/failover\.arm_horizon.*at least 1m/);
  });
});
