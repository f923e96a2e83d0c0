import { describe, expect, it } from "vitest";
import {
  backupDate,
  networkOfBackup,
  parseBackup,
  toZigpyBackup,
} from "../../../sidecar/coordinator/backup.js";

const herdsmanBackup = {
  metadata: {
    format: "zigpy/open-coordinator-backup",
    version: 1,
    source: "zigbee-herdsman@10.9.2",
    internal: { date: "2026-11-26T10:00:00.000Z", znpVersion: 2 },
  },
  stack_specific: { zstack: { tclk_seed: "c04884427c8a1ed7bb8412815ccce7aa" } },
  coordinator_ieee: "00124b001e17efa8",
  pan_id: "1a2",
  extended_pan_id: "dddddddddddddddd",
  nwk_update_id: 0,
  security_level: 5,
  channel: 15,
  channel_mask: [15],
  network_key: { key: "01030507090b0d0f00020406080a0c0d", sequence_number: 0, frame_counter: 123456 },
  devices: [
    {
      nwk_address: "5f",
      ieee_address: "00158d0001a2b3c4",
      is_child: false,
      link_key: { key: "aa", rx_counter: 0, tx_counter: 10 },
    },
  ],
};

describe("coordinator_backup.json", () => {
  it("is parsed and its network read in bridge/info's notation", () => {
    const backup = parseBackup(JSON.stringify(herdsmanBackup));
    expect(networkOfBackup(backup)).toEqual({
      ieee: "0x00124b001e17efa8",
      pan_id: 0x1a2,
      extended_pan_id: "0xdddddddddddddddd",
      channel: 15,
      network_key: "01030507090b0d0f00020406080a0c0d",
      frame_counter: 123456,
    });
    expect(backupDate(backup)?.toISOString()).toBe("2026-11-26T10:00:00.000Z");
  });

  it("is padded for zigpy-znp, everything else passed through", () => {
    const zigpy = toZigpyBackup(parseBackup(JSON.stringify(herdsmanBackup)));
    expect(zigpy.pan_id).toBe("01a2");
    expect(zigpy.devices[0]?.nwk_address).toBe("005f");
    expect((zigpy as Record<string, unknown>).stack_specific).toEqual(herdsmanBackup.stack_specific);
    expect((zigpy.devices[0] as Record<string, unknown>).link_key).toEqual(
      herdsmanBackup.devices[0]?.link_key,
    );
  });

  it("refuses what is not an open coordinator backup, naming the field", () => {
    expect(() => parseBackup("{")).toThrow(/not JSON/);
    expect(() => parseBackup(JSON.stringify({ ...herdsmanBackup, network_key: { key: "aa" } }))).toThrow(
      /network_key\.sequence_number/,
    );
    expect(() =>
      parseBackup(
        JSON.stringify({ ...herdsmanBackup, metadata: { ...herdsmanBackup.metadata, format: "x" } }),
      ),
    ).toThrow(/metadata\.format/);
  });
});
