import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NvStore, type ZigpyNvramDump } from "../../lab/simulator/nv.js";

const formed = JSON.parse(
  readFileSync("/work/shared/data/nvram/CC2652R-ZStack4.formed.json", "utf8"),
) as ZigpyNvramDump;

describe("NV store", () => {
  it("reaches legacy items through the extended LEGACY alias (sysId 1, item 0, sub = id)", () => {
    const nv = new NvStore();
    nv.setLegacy(0x0021, Buffer.from("aa", "hex"));
    expect(nv.getExtended(1, 0, 0x0021)).toEqual(Buffer.from("aa", "hex"));
    nv.setExtended(1, 0, 0x0062, Buffer.from("bb", "hex"));
    expect(nv.getLegacy(0x0062)).toEqual(Buffer.from("bb", "hex"));
    expect(nv.deleteExtended(1, 0, 0x0021)).toBe(true);
    expect(nv.hasLegacy(0x0021)).toBe(false);
  });

  it("walks a table up to its first missing entry, as every reader does", () => {
    const nv = new NvStore();
    for (const sub of [0, 1, 3]) nv.setExtended(1, 7, sub, Buffer.alloc(12));
    expect(nv.table(7)).toHaveLength(2);
    expect(nv.tableSubIds(7)).toEqual([0, 1, 3]);
  });

  it("renders the real formed dump exactly as zigpy-znp's nvram_read wrote it, key order included", () => {
    const nv = new NvStore();
    nv.setLegacy(0x0035, Buffer.alloc(40));
    nv.applyZigpyDump(formed);
    const dump = nv.toZigpyDump(nv.getLegacy(0x0035)!.subarray(0, 2));
    expect(JSON.stringify(dump)).toBe(JSON.stringify(formed));
  });

  it("refuses a dump with an item name it does not know instead of dropping it", () => {
    expect(() => new NvStore().applyZigpyDump({ LEGACY: { NOT_AN_ITEM: "00" } })).toThrow(/NOT_AN_ITEM/);
    expect(() => new NvStore().applyZigpyDump({ LEGACY: {}, NOT_A_TABLE: { "0x0000": "00" } })).toThrow(
      /NOT_A_TABLE/,
    );
  });

  it("survives its own JSON round trip and rejects a corrupted value", () => {
    const nv = new NvStore();
    nv.applyZigpyDump(formed);
    const copy = NvStore.fromJSON(JSON.parse(JSON.stringify(nv.toJSON())));
    expect(copy.toJSON()).toEqual(nv.toJSON());
    expect(() => NvStore.fromJSON({ legacy: { "0x0001": "zz" }, extended: {} })).toThrow(/hex/);
  });

  it("reports every change so the owner can persist it", () => {
    const nv = new NvStore();
    let changes = 0;
    nv.onChange = () => changes++;
    nv.setLegacy(1, Buffer.alloc(8));
    nv.setExtended(1, 4, 0, Buffer.alloc(20));
    nv.deleteLegacy(1);
    nv.deleteLegacy(1);
    expect(changes).toBe(3);
  });
});
