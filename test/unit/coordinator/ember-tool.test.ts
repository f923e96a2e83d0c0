import { describe, expect, it } from "vitest";
import { parseToolArgs, runTool, UsageError } from "../../../sidecar/coordinator/ember/tool.js";
import { parseTcpPort, sttyArguments } from "../../../sidecar/coordinator/ember/transport.js";

async function run(argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runTool(argv, { stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l) });
  return { code, stdout, stderr };
}

describe("the node tool's arguments", () => {
  it("parses a full command line, with herdsman's defaults", () => {
    expect(parseToolArgs(["info", "--port", "/dev/ttyACM0"])).toEqual({
      command: "info",
      port: "/dev/ttyACM0",
      baud: 115200,
      flow: "software",
      timeoutMs: 20_000,
      eui64: undefined,
      trace: false,
      network: true,
    });
    expect(parseToolArgs(["info", "--port", "/dev/ttyACM0", "--no-network"]).network).toBe(false);
    expect(
      parseToolArgs([
        "set-eui64",
        "--port=tcp://192.0.2.7:6638",
        "--baud",
        "460800",
        "--flow",
        "hardware",
        "--timeout-ms",
        "30000",
        "--eui64",
        "0x8C65A3FFFE0000CC",
        "--trace",
      ]),
    ).toMatchObject({
      command: "set-eui64",
      port: "tcp://192.0.2.7:6638",
      baud: 460800,
      flow: "hardware",
      timeoutMs: 30_000,
      eui64: "8c65a3fffe0000cc",
      trace: true,
    });
  });

  const bad: [string[], RegExp][] = [
    [[], /no command given/],
    [["--port", "/dev/ttyACM0"], /no command given/],
    [["info", "park", "--port", "/dev/ttyACM0"], /one command expected/],
    [["format", "--port", "/dev/ttyACM0"], /unknown command "format"/],
    [["info"], /--port is required/],
    [["info", "--port", ""], /--port is required/],
    [["info", "--port", "ttyACM0"], /absolute device path or tcp:\/\/host:port/],
    [["info", "--port", "tcp://host"], /not tcp:\/\/host:port/],
    [["info", "--port", "tcp://host:99999"], /not tcp:\/\/host:port/],
    [["info", "--port", "/dev/ttyACM0", "--baud", "115200.5"], /--baud must be a whole number/],
    [["info", "--port", "/dev/ttyACM0", "--baud", "12345"], /--baud 12345 is not one of/],
    [["info", "--port", "/dev/ttyACM0", "--flow", "xonxoff"], /--flow must be software, hardware or none/],
    [["info", "--port", "/dev/ttyACM0", "--timeout-ms", "-5"], /--timeout-ms/],
    [["info", "--port", "/dev/ttyACM0", "--timeout-ms", "10"], /between 1000 and 600000/],
    [["info", "--port", "/dev/ttyACM0", "--verbose"], /unknown option "--verbose"/],
    [["info", "--port", "/dev/ttyACM0", "-v"], /unknown option "-v"/],
    [["info", "--port"], /--port needs a value/],
    [["info", "--port", "--baud", "115200"], /--port needs a value/],
    [["info", "--port", "/dev/a", "--port", "/dev/b"], /--port given more than once/],
    [["info", "--port", "/dev/ttyACM0", "--trace=yes"], /--trace takes no value/],
    [["set-eui64", "--port", "/dev/ttyACM0"], /set-eui64 needs --eui64/],
    [["set-eui64", "--port", "/dev/ttyACM0", "--eui64", "8c65a3fffe0000c"], /is not an EUI64/],
    [["set-eui64", "--port", "/dev/ttyACM0", "--eui64", "ffffffffffffffff"], /is not an EUI64/],
    [["park", "--port", "/dev/ttyACM0", "--eui64", "8c65a3fffe0000cc"], /--eui64 is only for set-eui64/],
  ];

  it.each(bad)("rejects %j", (argv, message) => {
    expect(() => parseToolArgs(argv)).toThrow(UsageError);
    expect(() => parseToolArgs(argv)).toThrow(message);
  });

  it("exits 2 on a usage error, with one JSON object on stdout and the usage on stderr", async () => {
    for (const [argv] of bad) {
      const { code, stdout, stderr } = await run(argv);
      expect(code).toBe(2);
      expect(stdout).toHaveLength(1);
      expect(JSON.parse(stdout[0]!)).toEqual({ error: expect.stringMatching(/^usage: /) });
      expect(stderr.join("\n")).toContain("usage: node ember-tool.js");
    }
  });

  it("prints the usage for --help and exits 0", async () => {
    const { code, stdout } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stdout[0]).toContain("set-eui64");
  });

  it("exits 1 with a clear error for a port that does not exist", async () => {
    const { code, stdout } = await run(["info", "--port", "/dev/does-not-exist-ember"]);
    expect(code).toBe(1);
    expect(stdout).toEqual([
      JSON.stringify({
        error: "serial port /dev/does-not-exist-ember does not exist (dongle unplugged or renamed?)",
      }),
    ]);
  });

  it("exits 1 for a path that is not a serial device", async () => {
    const { code, stdout } = await run(["park", "--port", "/etc/hostname"]);
    expect(code).toBe(1);
    expect(JSON.parse(stdout[0]!)).toEqual({ error: "/etc/hostname is not a serial device" });
  });
});

describe("the serial and TCP port settings", () => {
  it("configures the tty raw, 8N1, with the flow control asked for after `raw`", () => {
    const args = sttyArguments("/dev/ttyUSB0", 115200, "software");
    expect(args.slice(0, 5)).toEqual(["-F", "/dev/ttyUSB0", "115200", "raw", "-echo"]);
    expect(args).toEqual(
      expect.arrayContaining(["cs8", "-cstopb", "-parenb", "clocal", "min", "1", "time", "0"]),
    );
    expect(args.slice(-4)).toEqual(["-crtscts", "ixon", "ixoff", "-ixany"]);
    expect(sttyArguments("/dev/ttyUSB0", 460800, "hardware").slice(-3)).toEqual([
      "crtscts",
      "-ixon",
      "-ixoff",
    ]);
    expect(sttyArguments("/dev/ttyUSB0", 115200, "none").slice(-3)).toEqual(["-crtscts", "-ixon", "-ixoff"]);
  });

  it("parses tcp://host:port", () => {
    expect(parseTcpPort("tcp://192.0.2.7:6638")).toEqual({ host: "192.0.2.7", port: 6638 });
    expect(parseTcpPort("tcp://slzb-07.local:6638")).toEqual({ host: "slzb-07.local", port: 6638 });
    expect(parseTcpPort("tcp://[::1]:6638")).toEqual({ host: "::1", port: 6638 });
    expect(parseTcpPort("tcp://host:0")).toBeUndefined();
    expect(parseTcpPort("tcp://host:port")).toBeUndefined();
    expect(parseTcpPort("tcp://:6638")).toBeUndefined();
  });
});
