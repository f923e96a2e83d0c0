import { describe, expect, it } from "vitest";
import { nodeVersionProblem } from "../../../sidecar/node/node-version.js";

describe("the Node.js that runs the ember tool", () => {
  it("accepts Node.js 18 and newer, with or without a trailing newline", () => {
    expect(nodeVersionProblem("v18.0.0\n")).toBeUndefined();
    expect(nodeVersionProblem("v20.20.2")).toBeUndefined();
    expect(nodeVersionProblem("v100.1.0")).toBeUndefined();
  });

  it("names an older version, and output that is no version at all", () => {
    expect(nodeVersionProblem("v16.20.2\n")).toBe("v16.20.2 is older than Node.js 18");
    expect(nodeVersionProblem("v9.11.2")).toBe("v9.11.2 is older than Node.js 18");
    expect(nodeVersionProblem("Python 3.11.2")).toBe('"Python 3.11.2" is not a Node.js version');
    expect(nodeVersionProblem("")).toBe('"" is not a Node.js version');
  });
});
