import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  changedItems,
  compareNvram,
  countItems,
  extraItems,
  frameCounterOf,
  NvramError,
  networkOf,
  parseNvram,
  raiseFrameCounter,
} from "../../../sidecar/coordinator/nvram.js";
import { sharedData } from "../../helpers/shared-data.js";

const formedText = readFileSync(sharedData("nvram/CC2652R-ZStack4.formed.json"), "utf8");
const resetText = readFileSync(sharedData("nvram/CC2652R-ZStack4.reset.json"), "utf8");

describe("NVRAM dumps of a real CC2652R", () => {
  it("the formed dump validates and yields its network", () => {
    const dump = parseNvram(formedText, { requireNetwork: true });
    expect(countItems(dump)).toBeGreaterThan(500);
    expect(networkOf(dump)).toEqual({
      ieee: "0x00124b001e17efa8",
      pan_id: 0x4402,
      extended_pan_id: "0xa2ba38a8b5e683a0",
      channel: 15,
      network_key: "4c4e72b8412251799abf35251288ca83",
      frame_counter: 7500,
      configured: true,
    });
  });

  it("the reset dump is a valid dump but holds no network", () => {
    const dump = parseNvram(resetText);
    expect(() => networkOf(dump)).toThrow(/no NIB/);
    expect(() => parseNvram(resetText, { requireNetwork: true })).toThrow(NvramError);
  });

  it.each([
    ["", /not JSON/],
    ["[]", /not an object/],
    ["{}", /no LEGACY/],
    ['{"LEGACY": {"EXTADDR": "00"}}', /only 1 LEGACY items/],
    ['{"LEGACY": {"EXTADDR": "zz"}}', /not lowercase hex/],
  ])("refuses %j", (text, message) => {
    expect(() => parseNvram(text)).toThrow(message);
  });

  it("a dump with a table missing is refused", () => {
    const dump = JSON.parse(formedText);
    delete dump.NWK_SEC_MATERIAL_TABLE;
    expect(() => parseNvram(JSON.stringify(dump))).toThrow(/NWK_SEC_MATERIAL_TABLE/);
  });
});

describe("frame counters", () => {
  it("are raised in the security material and in NWKKEY, never lowered", () => {
    const dump = parseNvram(formedText);
    const raised = raiseFrameCounter(dump, 10_000);
    expect(frameCounterOf(raised)).toBe(10_000);
    expect(raised.LEGACY?.NWKKEY?.endsWith("10270000")).toBe(true);
    expect(raised.NWK_SEC_MATERIAL_TABLE?.["0x0001"]).toBe(dump.NWK_SEC_MATERIAL_TABLE?.["0x0001"]);
    expect(frameCounterOf(raiseFrameCounter(dump, 100))).toBe(7500);
    expect(frameCounterOf(dump)).toBe(7500);
  });
});

describe("read-back comparison", () => {
  it("accepts extra items on the dongle, reports every differing or missing one", () => {
    const dump = parseNvram(formedText);
    expect(compareNvram(dump, dump)).toEqual([]);
    const readBack = structuredClone(dump);
    readBack.LEGACY = { ...readBack.LEGACY, EXTRA_ITEM: "00" };
    expect(compareNvram(dump, readBack)).toEqual([]);
    delete readBack.ADDRMGR?.["0x0003"];
    readBack.LEGACY.PANID = "ffff";
    expect(compareNvram(dump, readBack).map((d) => d.item)).toEqual(["LEGACY.PANID", "ADDRMGR.0x0003"]);
  });
});

describe("delta writes between real dumps", () => {
  it("a raised counter changes only the counter items; the reset dump holds items the formed one lacks or not", () => {
    const formed = parseNvram(formedText, { requireNetwork: true });
    const before = frameCounterOf(formed);
    const raised = raiseFrameCounter(formed, before + 2500);
    const delta = changedItems(formed, raised);
    // The network's security material entry (and NWKKEY's copy, if the dump has one): nothing else.
    expect(Object.keys(delta).sort()).toEqual(
      Object.keys(delta)
        .filter((k) => ["LEGACY", "NWK_SEC_MATERIAL_TABLE"].includes(k))
        .sort(),
    );
    expect(countItems(delta)).toBeGreaterThan(0);
    expect(countItems(delta)).toBeLessThanOrEqual(3);
    // Written onto a dongle that held `formed`, the delta leaves it holding `raised` exactly.
    const onDongle = structuredClone(formed);
    for (const [section, items] of Object.entries(delta)) {
      onDongle[section] = { ...onDongle[section], ...items };
    }
    expect(compareNvram(raised, onDongle)).toEqual([]);
    expect(extraItems(formed, raised)).toEqual([]);
    expect(changedItems(formed, formed)).toEqual({});
  });

  it("items only on the dongle are named: nvram_write cannot delete them", () => {
    const formed = parseNvram(formedText, { requireNetwork: true });
    const held = structuredClone(formed);
    held.LEGACY = { ...held.LEGACY, Z2MHA_STALE: "00" };
    expect(extraItems(held, formed)).toEqual(["LEGACY.Z2MHA_STALE"]);
    // zigpy-znp's migration record (its network_restore writes it) is not worth a reset.
    held.LEGACY = { ...held.LEGACY, ZIGPY_ZNP_MIGRATION_ID: "01" };
    expect(extraItems(held, formed)).toEqual(["LEGACY.Z2MHA_STALE"]);
    const reset = parseNvram(resetText);
    // Whatever a reset chip holds that the formed dump lacks must go by a reset, never by a write.
    for (const item of extraItems(reset, formed)) {
      const [section, key] = item.split(".") as [string, string];
      expect(formed[section]?.[key]).toBeUndefined();
    }
  });
});
