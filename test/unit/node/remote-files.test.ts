import { describe, expect, it } from "vitest";
import { isSecretPath, redactOverrides } from "../../../sidecar/config/secret.js";
import { checkCounter, raiseFrameCounter } from "../../../sidecar/coordinator/nvram.js";
import { parseHashLine } from "../../../sidecar/node/data-files.js";

const H = "a".repeat(64);

describe("sha256sum output", () => {
  it("plain names, BusyBox and GNU alike", () => {
    expect(parseHashLine(`${H}  /d/database.db`)).toEqual({ sha256: H, path: "/d/database.db" });
    expect(parseHashLine(`${H} */d/--help`)).toEqual({ sha256: H, path: "/d/--help" });
  });

  it("GNU's escaped names (a backslash, CR or newline in the name) are read back exactly", () => {
    // What GNU coreutils 9 prints for "a\rb" and "c\d".
    expect(parseHashLine(`\\${H}  /d/a\\rb`)).toEqual({ sha256: H, path: "/d/a\rb" });
    expect(parseHashLine(`\\${H}  /d/c\\\\d`)).toEqual({ sha256: H, path: "/d/c\\d" });
    expect(parseHashLine(`\\${H}  /d/x\\ny`)).toEqual({ sha256: H, path: "/d/x\ny" });
  });

  it("anything else is not a hash line", () => {
    expect(parseHashLine("sha256sum: /d/x: No such file or directory")).toBeUndefined();
  });
});

describe("frame counters never wrap", () => {
  it("a counter beyond 32 bits is refused, not wrapped to a small number", () => {
    expect(() => checkCounter(2 ** 32)).toThrow(/does not fit in 32 bits/);
    expect(() => raiseFrameCounter({ LEGACY: {} }, 0xffff_ffff + 2500)).toThrow(/exhausted/);
    expect(() => checkCounter(0xffff_ffff)).not.toThrow();
  });
});

describe("secret overrides", () => {
  it("passwords, keys and tokens in configuration.yaml paths are redacted", () => {
    expect(isSecretPath("mqtt.password")).toBe(true);
    expect(isSecretPath("advanced.network_key")).toBe(true);
    expect(isSecretPath("frontend.auth_token")).toBe(true);
    expect(isSecretPath("serial.port")).toBe(false);
    expect(redactOverrides({ "mqtt.password": "hunter2", "frontend.host": "10.0.0.2" })).toEqual({
      "mqtt.password": "**redacted**",
      "frontend.host": "10.0.0.2",
    });
  });
});
