/**
 * Config sync in the lab: the real zigbee2mqtt on node1, standbys node2 and node3, the sidecar on
 * the controller reading and writing over SSH/SFTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { StagedManifest } from "../../sidecar/node/staging.js";
import type { OperationRecord, SnapshotInfo } from "../../sidecar/types.js";
import { baseline, type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import type { HostId, Lab } from "./world.js";

const DEVICE_IEEE = "0x00158d0001a2b3c4";
const NODE2_SERIAL = "/dev/serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus_node2-if00-port0";

/** An Aqara door sensor as zigbee2mqtt keeps it in database.db after it joined. */
const DEVICE_LINE = JSON.stringify({
  id: 2,
  type: "EndDevice",
  ieeeAddr: DEVICE_IEEE,
  nwkAddr: 24321,
  manufId: 4151,
  manufName: "LUMI",
  powerSource: "Battery",
  modelId: "lumi.sensor_magnet.aq2",
  epList: [1],
  endpoints: {
    "1": {
      profId: 260,
      epId: 1,
      devId: 24321,
      inClusterList: [0, 3, 65535, 6],
      outClusterList: [0, 4, 65535],
      clusters: {},
      binds: [],
      configuredReportings: [],
      meta: {},
    },
  },
  appVersion: 10,
  stackVersion: 2,
  hwVersion: 1,
  dateCode: "20161128",
  swBuildId: "3000-0001",
  zclVersion: 1,
  interviewCompleted: true,
  interviewState: "SUCCESSFUL",
  meta: { configured: 1 },
  lastSeen: 1_764_000_000_000,
});

let lab: Lab;
let h: SidecarHandle;

async function staged(node: HostId): Promise<{ manifest: StagedManifest; config: string; files: string[] }> {
  const dir = `${lab.node(node).stagingDir}/current`;
  const manifest = JSON.parse(await lab.readFile(node, `${dir}/.z2mha-manifest.json`)) as StagedManifest;
  const config = await lab.readFile(node, `${dir}/configuration.yaml`);
  const files = (await lab.execOk(node, ["find", lab.node(node).stagingDir, "-mindepth", "1"])).stdout
    .split("\n")
    .filter(Boolean)
    .sort();
  return { manifest, config, files };
}

/** Every staged file's content matches the manifest (the copy is usable as a data dir). */
async function stagedIntact(node: HostId): Promise<StagedManifest> {
  const { manifest } = await staged(node);
  const dir = `${lab.node(node).stagingDir}/current`;
  const sums = await lab.execOk(node, ["sha256sum", "--", ...manifest.files.map((f) => `${dir}/${f.path}`)]);
  for (const f of manifest.files) expect(sums.stdout).toContain(`${f.sha256}  ${dir}/${f.path}`);
  return manifest;
}

beforeAll(async () => {
  lab = await sharedLab();
  await baseline(lab);
  // node1 has a joined device: zigbee2mqtt knows it from database.db, and its settings live in
  // devices.yaml, as many users keep them (zigbee2mqtt rewrites a file it changes with js-yaml,
  // which drops comments; configuration.yaml keeps them because only devices.yaml changes).
  await lab.service("node1", "stop");
  const dataDir = lab.node("node1").dataDir;
  const db = await lab.readFile("node1", `${dataDir}/database.db`);
  await lab.writeFile("node1", `${dataDir}/database.db`, `${db.trimEnd()}\n${DEVICE_LINE}\n`, {
    user: "zigbee",
  });
  const config = await lab.readFile("node1", `${dataDir}/configuration.yaml`);
  await lab.writeFile(
    "node1",
    `${dataDir}/configuration.yaml`,
    `${config.trimEnd()}\n# Device settings are kept in their own file.\ndevices: devices.yaml\n`,
    { user: "zigbee" },
  );
  await lab.writeFile(
    "node1",
    `${dataDir}/devices.yaml`,
    `'${DEVICE_IEEE}':\n  friendly_name: door sensor\n`,
    {
      user: "zigbee",
    },
  );
  await lab.service("node1", "start");
  await lab.waitForZigbee2mqtt("node1");
  h = await startSidecar(lab, {
    sync: { interval: "1h", debounce: "2s", backup_refresh: "1h", keep: 3 },
    nodes: { node2: { overrides: { "serial.port": NODE2_SERIAL } } },
  });
});

afterAll(async () => {
  await h?.stop();
});

describe("sync", () => {
  it("a device renamed through zigbee2mqtt's MQTT API reaches every standby's staged copy, with their own settings and every comment", async () => {
    expect((await h.api.run("sync")).status).toBe("succeeded");
    const before = (await h.api.operations("sync")).length;
    const mqtt = await lab.mqtt();
    try {
      await mqtt.subscribeAsync("zigbee2mqtt/bridge/response/device/rename");
      const answered = new Promise<string>((resolve) => mqtt.on("message", (_t, p) => resolve(p.toString())));
      await mqtt.publishAsync(
        "zigbee2mqtt/bridge/request/device/rename",
        JSON.stringify({ from: DEVICE_IEEE, to: "Kitchen door" }),
      );
      expect(JSON.parse(await answered)).toMatchObject({ status: "ok", data: { to: "Kitchen door" } });
    } finally {
      await mqtt.endAsync();
    }
    // zigbee2mqtt reported the change: a sync follows by itself, debounced.
    const auto = await h.api.waitFor("a sync triggered by the rename", async () => {
      const syncs = await h.api.operations("sync");
      const op = syncs.length > before ? syncs[0] : undefined;
      return op && op.status !== "running" ? op : undefined;
    });
    expect(auto).toMatchObject({ status: "succeeded", trigger: "schedule" });
    expect(auto.reason).toMatch(/zigbee2mqtt reported a change \(bridge\/response\/device\/rename/);

    const active = await lab.readFile("node1", `${lab.node("node1").dataDir}/configuration.yaml`);
    const activeDevices = await lab.readFile("node1", `${lab.node("node1").dataDir}/devices.yaml`);
    expect(parse(activeDevices)[DEVICE_IEEE].friendly_name).toBe("Kitchen door");
    const node1Address = lab.node("node1").address;
    for (const node of ["node2", "node3"] as const) {
      const { config, manifest } = await staged(node);
      const expected = active
        .replace(`host: ${node1Address}`, `host: ${lab.node(node).address}`)
        .replace(/port: \/dev\/ttyUSB0/, `port: ${node === "node2" ? NODE2_SERIAL : "/dev/ttyUSB0"}`);
      // Byte for byte: only frontend.host and serial.port differ, comments and layout are kept.
      expect(config).toBe(expected);
      expect(config).toContain("# The comments in this file are part of the lab");
      expect(config).toContain("# Device settings are kept in their own file.");
      const devices = await lab.readFile(node, `${lab.node(node).stagingDir}/current/devices.yaml`);
      expect(parse(devices)[DEVICE_IEEE].friendly_name).toBe("Kitchen door");
      expect(manifest.target_node).toBe(node);
      await stagedIntact(node);
    }
    // The standbys' live data dirs were not touched.
    const live = await lab.exec("node2", ["cat", `${lab.node("node2").dataDir}/devices.yaml`]);
    expect(live.code).not.toBe(0);
  });

  it("a sync with nothing changed transfers no file content", async () => {
    const first = await h.api.run("sync");
    expect(first.status).toBe("succeeded");
    const second = await h.api.run("sync");
    expect(second).toMatchObject({ status: "succeeded" });
    expect(second.result).toMatchObject({
      bytes_moved: 0,
      bytes_read: 0,
      bytes_written: 0,
      files_read: 0,
      unchanged: true,
    });
    expect(second.result?.backup).toMatch(/fresh enough/);
    expect(second.steps.find((s) => s.name === "stage on node2")?.detail).toBe("already up to date");
    const metrics = await (
      await fetch(`${h.api.url}/metrics`, { headers: { authorization: `Bearer ${h.api.token}` } })
    ).text();
    expect(metrics).toMatch(/^z2mha_sync_last_bytes_moved\S* 0$/m);
    expect(metrics).toMatch(/^z2mha_sync_last_success_timestamp_seconds\S* \d+/m);
  });

  it("a data dir being rewritten during the sync (temp file + rename, as zigbee2mqtt does) is never staged torn", async () => {
    await lab.service("node1", "stop");
    const db = `${lab.node("node1").dataDir}/database.db`;
    const original = await lab.readFile("node1", db);
    // Five new versions a second, each written to a temp file and renamed over database.db. Each
    // version is 200 lines of one generation number and ends with a marker: a torn copy would
    // mix generations or lack the end.
    const writer = lab.exec(
      "node1",
      [
        "sh",
        "-c",
        'i=0; end=$(( $(date +%s) + $1 )); while [ "$(date +%s)" -lt "$end" ]; do i=$((i+1)); ' +
          'seq 200 | sed "s/.*/{\\"generation\\":$i,\\"pad\\":\\"................................................................\\"}/" > "$2.tmp"; ' +
          'echo "{\\"end\\":$i}" >> "$2.tmp"; mv -f "$2.tmp" "$2"; sleep 0.2; done',
        "writer",
        "12",
        db,
      ],
      { user: "zigbee", timeout: 60_000 },
    );
    try {
      const results: OperationRecord[] = [];
      for (let i = 0; i < 5; i++) results.push(await h.api.run("sync"));
      for (const op of results) expect(op.status, JSON.stringify(op.error)).toBe("succeeded");
      expect(results.filter((op) => Number(op.result?.files_read) > 0).length).toBeGreaterThan(0);
      for (const node of ["node2", "node3"] as const) {
        const copy = await lab.readFile(node, `${lab.node(node).stagingDir}/current/database.db`);
        const lines = copy.trimEnd().split("\n");
        const generations = new Set(lines.slice(0, -1).map((l) => JSON.parse(l).generation));
        expect(lines).toHaveLength(201);
        expect(generations.size).toBe(1);
        expect(JSON.parse(lines.at(-1) as string)).toEqual({ end: [...generations][0] });
        await stagedIntact(node);
      }
    } finally {
      await writer;
      await lab.writeFile("node1", db, original, { user: "zigbee" });
      await lab.service("node1", "start");
      await lab.waitForZigbee2mqtt("node1");
    }
  });

  it("an unreachable standby fails alone: the other is staged, nothing partial is left on it; back, it is caught up by itself", async () => {
    expect((await h.api.run("sync")).status).toBe("succeeded");
    const before = await stagedIntact("node3");
    await lab.fault("cut-link", "node3");
    try {
      await lab.execOk("node1", ["mkdir", "-p", `${lab.node("node1").dataDir}/external_converters`], {
        user: "zigbee",
      });
      await lab.writeFile(
        "node1",
        `${lab.node("node1").dataDir}/external_converters/lamp.mjs`,
        "export default [];\n",
        {
          user: "zigbee",
        },
      );
      const op = await h.api.run("sync");
      expect(op.status).toBe("failed");
      expect(op.error?.step).toBe("stage on node3");
      expect(op.result).toMatchObject({ staged: ["node2"], failed: { node3: expect.any(String) } });
      expect(op.steps.find((s) => s.name === "stage on node2")?.status).toBe("succeeded");
      expect((await staged("node2")).manifest.files.map((f) => f.path)).toContain(
        "external_converters/lamp.mjs",
      );
      // Read in node3's namespace, its cable still out: no partial file, the previous copy as it was
      // and usable.
      const after = await staged("node3");
      expect(
        after.files.some((f) => f.includes("/.next") || f.includes("/.prev") || f.includes(".tmp")),
      ).toBe(false);
      expect(after.manifest).toEqual(before);
      await stagedIntact("node3");
    } finally {
      await lab.fault("restore-link", "node3");
    }
    // Once it answers again, a sync starts by itself and catches it up (docs/sync.md).
    const catchUp = await h.api.waitFor(
      "a sync because node3 is back",
      async () => (await h.api.operations("sync")).find((o) => /^node3 is back/.test(o.reason ?? "")),
      60_000,
    );
    expect((await h.api.finish(catchUp)).status).toBe("succeeded");
    expect((await staged("node3")).manifest.files.map((f) => f.path)).toContain(
      "external_converters/lamp.mjs",
    );
    await stagedIntact("node3");
  });

  it("a standby whose disk is full fails cleanly; its previous staged copy stays intact and usable", async () => {
    expect((await h.api.run("sync")).status).toBe("succeeded");
    const before = await stagedIntact("node2");
    await lab.fault("fill-disk", "node2", { disk: "home" });
    try {
      await lab.execOk("node1", ["mkdir", "-p", `${lab.node("node1").dataDir}/external_converters`], {
        user: "zigbee",
      });
      await lab.writeFile(
        "node1",
        `${lab.node("node1").dataDir}/external_converters/big.mjs`,
        `// ${"x".repeat(200_000)}\n`,
        {
          user: "zigbee",
        },
      );
      const op = await h.api.run("sync");
      expect(op.status).toBe("failed");
      expect(op.error?.step).toBe("stage on node2");
      expect(op.steps.find((s) => s.name === "stage on node3")?.status).toBe("succeeded");
      const after = await staged("node2");
      expect(after.manifest).toEqual(before);
      expect(after.files.some((f) => f.includes("/.next"))).toBe(false);
      await stagedIntact("node2");
      const status = await h.api.status();
      expect(status.last_sync?.operation_id).not.toBe(op.id);
    } finally {
      await lab.fault("free-disk", "node2", { disk: "home" });
      await lab.exec("node1", ["rm", "-f", `${lab.node("node1").dataDir}/external_converters/big.mjs`]);
    }
    expect((await h.api.run("sync")).status).toBe("succeeded");
  });

  it("lists snapshots and restores an older one to a standby's staged copy", async () => {
    const { snapshots } = await h.api.call<{ snapshots: SnapshotInfo[] }>("GET", "/api/v1/snapshots");
    const data = snapshots.filter((s) => s.kind === "data");
    expect(data.length).toBeGreaterThanOrEqual(2);
    expect(data.length).toBeLessThanOrEqual(3 + 2); // keep: 3, plus what standbys have staged
    for (const s of data)
      expect(s).toMatchObject({ node: "node1", files: expect.any(Number), bytes: expect.any(Number) });
    const current = (await staged("node2")).manifest.snapshot_id;
    const older = data.find((s) => s.id !== current) as SnapshotInfo;
    const op = await h.api.finish(
      h.api.call<OperationRecord>("POST", `/api/v1/snapshots/${older.id}/restore`, { node: "node2" }),
    );
    expect(op).toMatchObject({ kind: "restore-snapshot", status: "succeeded" });
    const restored = await stagedIntact("node2");
    expect(restored.snapshot_id).toBe(older.id);
    expect(restored.files).toHaveLength(older.files as number);
    const refused = await h.api.request("POST", `/api/v1/snapshots/${older.id}/restore`, { node: "node1" });
    expect(refused.status).toBe(422);
    const missing = await h.api.request(
      "POST",
      "/api/v1/snapshots/data-20260101T000000000Z-00000000/restore",
      { node: "node2" },
    );
    expect(missing.status).toBe(404);
  });
});
