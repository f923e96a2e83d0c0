import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { parseDfPortable } from "../../../sidecar/node/disk-space.js";
import { keyTypeOf, normalizeFingerprint, openSshFingerprint } from "../../../sidecar/node/fingerprint.js";
import { ShellQuoteError } from "../../../sidecar/node/quote.js";
import { buildRemoteCommand } from "../../../sidecar/node/remote-command.js";
import {
  assertRemotePath,
  assertRemovablePath,
  TEMP_SUFFIX,
  tempSiblingOf,
} from "../../../sidecar/node/remote-path.js";
import { Semaphore } from "../../../sidecar/node/semaphore.js";
import { isNotFound, SFTP_STATUS, SshError } from "../../../sidecar/node/ssh-errors.js";
import { TailBuffer } from "../../../sidecar/node/tail-buffer.js";

const run = promisify(execFile);

describe("buildRemoteCommand", () => {
  it("execs the quoted argument vector", () => {
    expect(buildRemoteCommand(["sudo", "rc-service", "zigbee2mqtt", "stop"])).toBe(
      "exec sudo rc-service zigbee2mqtt stop",
    );
    expect(buildRemoteCommand(["printf", "%s", "a b; c"])).toBe("exec printf %s 'a b; c'");
  });

  it("changes to a quoted working directory first", () => {
    expect(buildRemoteCommand(["ls"], { cwd: "/opt/my dir" })).toBe("cd '/opt/my dir' && exec ls");
  });

  it("refuses what exec or cd would misread", () => {
    expect(() => buildRemoteCommand([])).toThrow(ShellQuoteError);
    expect(() => buildRemoteCommand([""])).toThrow(/program name/);
    expect(() => buildRemoteCommand(["-x"])).toThrow(/must not start with "-"/);
    expect(() => buildRemoteCommand(["ls"], { cwd: "relative" })).toThrow(/absolute/);
    expect(() => buildRemoteCommand(["echo", "a\0b"])).toThrow(/NUL/);
  });
});

describe("TailBuffer", () => {
  it("keeps everything under the limit", () => {
    const tail = new TailBuffer(10);
    tail.push(Buffer.from("hello "));
    tail.push(Buffer.from("you"));
    expect(tail.toString()).toBe("hello you");
    expect(tail.truncated).toBe(false);
    expect(tail.totalBytes).toBe(9);
  });

  it("keeps the last bytes over the limit and says it truncated", () => {
    const tail = new TailBuffer(5);
    for (const part of ["abc", "defg", "hi", "jklmnop"]) tail.push(Buffer.from(part));
    expect(tail.toString()).toBe("lmnop");
    expect(tail.truncated).toBe(true);
    expect(tail.totalBytes).toBe(16);
  });

  it("keeps the end of one chunk larger than the limit", () => {
    const tail = new TailBuffer(4);
    tail.push(Buffer.from("0123456789"));
    expect(tail.toString()).toBe("6789");
  });

  it("drops a multibyte character cut by truncation instead of mangling it", () => {
    const tail = new TailBuffer(5);
    tail.push(Buffer.from("xx€abc")); // € is 3 bytes: the last 5 bytes start inside it
    expect(tail.toString()).toBe("abc");
  });

  it("with a limit of zero keeps nothing but still counts", () => {
    const tail = new TailBuffer(0);
    tail.push(Buffer.from("abc"));
    expect(tail.toString()).toBe("");
    expect(tail.truncated).toBe(true);
  });

  it("refuses a negative limit", () => {
    expect(() => new TailBuffer(-1)).toThrow(RangeError);
  });
});

describe("openSshFingerprint", () => {
  const dir = mkdtemp(join(tmpdir(), "z2mha-fp-"));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));

  it.each(["ed25519", "ecdsa", "rsa"])("matches ssh-keygen -lf for an %s key", async (type) => {
    const path = join(await dir, `key_${type}`);
    await run("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path]);
    const pub = await readFile(`${path}.pub`, "utf8");
    const blob = Buffer.from(pub.split(" ")[1] as string, "base64");
    const { stdout } = await run("ssh-keygen", ["-lf", `${path}.pub`]);
    const expected = /SHA256:\S+/.exec(stdout)?.[0];
    expect(openSshFingerprint(blob)).toBe(expected);
    expect(keyTypeOf(blob)).toBe(pub.split(" ")[0]);
  });

  it("compares without base64 padding", () => {
    expect(normalizeFingerprint(" SHA256:abc= ")).toBe("SHA256:abc");
  });

  it("finds no key type in garbage", () => {
    expect(keyTypeOf(Buffer.from([0, 0, 0, 200, 1]))).toBeUndefined();
    expect(keyTypeOf(Buffer.alloc(2))).toBeUndefined();
  });
});

describe("remote paths", () => {
  it("must be absolute and free of NUL", () => {
    expect(() => assertRemotePath("data/x")).toThrow(/absolute/);
    expect(() => assertRemotePath("/a\0b")).toThrow(/NUL/);
    expect(() => assertRemotePath("/opt/zigbee2mqtt/data")).not.toThrow();
  });

  it.each(["/", "//", "/opt", "/opt/", "relative/dir", "/opt/../etc", "/opt/./x", "/opt//x"])(
    "refuses to rmrf %j",
    (path) => {
      expect(() => assertRemovablePath(path)).toThrow(TypeError);
    },
  );

  it("allows rmrf of a normal path two levels deep or more", () => {
    expect(() => assertRemovablePath("/home/zigbee/zigbee2mqtt-ha/tmp")).not.toThrow();
    expect(() => assertRemovablePath("/srv/x/")).not.toThrow();
  });

  it("puts the temp file next to the target, hidden and recognisable", () => {
    const temp = tempSiblingOf("/opt/zigbee2mqtt/data/configuration.yaml");
    expect(temp.startsWith("/opt/zigbee2mqtt/data/.configuration.yaml.z2mha-")).toBe(true);
    expect(temp).toMatch(TEMP_SUFFIX);
    expect(tempSiblingOf("/a/b")).not.toBe(tempSiblingOf("/a/b"));
  });
});

describe("parseDfPortable", () => {
  it("reads GNU df -Pk", () => {
    const out =
      "Filesystem     1024-blocks     Used Available Capacity Mounted on\n" +
      "/dev/sda1        263577228 12345678 237834567       5% /\n";
    expect(parseDfPortable(out)).toEqual({
      totalBytes: 263577228 * 1024,
      freeBytes: (263577228 - 12345678) * 1024,
      availableBytes: 237834567 * 1024,
      source: "df",
    });
  });

  it("reads busybox df -Pk with a file system name containing spaces", () => {
    const out =
      "Filesystem           1024-blocks    Used Available Capacity Mounted on\n" +
      "my fs name                 1000     250       700  26% /mnt/data\n";
    expect(parseDfPortable(out)?.availableBytes).toBe(700 * 1024);
  });

  it("returns undefined for output it does not understand", () => {
    expect(parseDfPortable("df: /nope: No such file or directory\n")).toBeUndefined();
    expect(parseDfPortable("")).toBeUndefined();
  });
});

describe("Semaphore", () => {
  it("lets at most N through and the rest in order", async () => {
    const gate = new Semaphore(2);
    const order: string[] = [];
    const a = await gate.acquire();
    const b = await gate.acquire();
    const c = gate.acquire().then((release) => {
      order.push("c");
      return release;
    });
    const d = gate.acquire().then((release) => {
      order.push("d");
      return release;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    a();
    a(); // twice: must not free a second slot
    const releaseC = await c;
    expect(order).toEqual(["c"]);
    b();
    (await d)();
    releaseC();
    expect(order).toEqual(["c", "d"]);
  });
});

describe("SshError", () => {
  it("names the node and target and carries its kind", () => {
    const error = new SshError("sftp", { node: "node1", target: "10.0.0.2:22" }, "stat /x: No such file", {
      path: "/x",
      sftpStatus: SFTP_STATUS.NO_SUCH_FILE,
    });
    expect(error.message).toBe("node node1 (10.0.0.2:22): stat /x: No such file");
    expect(error.kind).toBe("sftp");
    expect(isNotFound(error)).toBe(true);
    expect(isNotFound(new Error("No such file"))).toBe(false);
  });
});
