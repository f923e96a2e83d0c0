import { describe, expect, it } from "vitest";
import { type OnAir, sameNetwork } from "../../bench/reliability.js";

const ours = (node: string): OnAir => ({ node, pan_id: 7375, extended_pan_id: "b54c3ab7d01cd3b9" });

describe("the on-air sampler's split-network rule", () => {
  it("two dongles running our network are a split network", () => {
    expect(sameNetwork([ours("node1"), ours("node2")]).map((n) => n.node)).toEqual(["node1", "node2"]);
  });

  it("the same PAN ID under another extended PAN is a conflict too", () => {
    const other = { node: "node2", pan_id: 7375, extended_pan_id: "faa3380a93e7aa2c" };
    expect(sameNetwork([ours("node1"), other])).toHaveLength(2);
  });

  it("a throwaway network with other PAN and extended PAN beside ours is not", () => {
    const throwaway = { node: "node2", pan_id: 36625, extended_pan_id: "faa3380a93e7aa2c" };
    expect(sameNetwork([ours("node1"), throwaway])).toHaveLength(1);
    expect(sameNetwork([ours("node1")])).toHaveLength(1);
    expect(sameNetwork([])).toEqual([]);
  });

  it("finds the pair among three", () => {
    const throwaway = { node: "node2", pan_id: 36625, extended_pan_id: "faa3380a93e7aa2c" };
    expect(sameNetwork([throwaway, ours("node1"), ours("node3")]).map((n) => n.node)).toEqual([
      "node1",
      "node3",
    ]);
  });
});
