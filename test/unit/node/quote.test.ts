import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { quoteArg, quoteArgv, ShellQuoteError } from "../../../sidecar/node/quote.js";

const run = promisify(execFile);

/** The shells a node's login shell may be: Debian's sh (dash), bash, and busybox ash as on Alpine. */
const shells: Array<{ name: string; argv: string[] }> = [
  { name: "/bin/sh", argv: ["/bin/sh"] },
  { name: "/bin/dash", argv: ["/bin/dash"] },
  { name: "/bin/bash", argv: ["/bin/bash"] },
  ...(existsSync("/usr/bin/busybox") || existsSync("/bin/busybox")
    ? [{ name: "busybox ash", argv: ["busybox", "ash"] }]
    : []),
].filter((shell) => shell.argv[0] === "busybox" || existsSync(shell.argv[0] as string));

const HOSTILE = [
  "",
  " ",
  "a b",
  "'",
  "''",
  "it's",
  '"',
  '"quoted"',
  "$(id)",
  "`id`",
  "$HOME",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion is the test input
  "${HOME}",
  "$((1+1))",
  "a;b",
  "a && b",
  "a || b",
  "a | b",
  "a > /tmp/x",
  "< /etc/passwd",
  "line1\nline2",
  "\n",
  "trailing\n",
  "tab\there",
  "\r\n",
  "back\\slash",
  "\\",
  "\\'",
  "'\\''",
  "*",
  "?",
  "[a-z]",
  "{a,b}",
  "~",
  "~root",
  "#comment",
  "!",
  "!!",
  "-n",
  "--",
  "-e",
  "%s%d",
  "a=b",
  "x=$(id)",
  "\u0001\u0002\u001b[31m",
  "\u007f",
  "héllo wörld",
  "日本語",
  "🐝 zigbee",
  "'$(echo pwned)'",
  '"; rm -rf / #',
  "'; rm -rf / #",
];

/** Deterministic PRNG so a failure can be reproduced from its seed. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = [..."'\"`$(){}[]|&;<>*?!#~=%\\ \t\n\r-", "\u0001", "\u001b", "\u007f", "é", "€", "😀"];

function randomString(next: () => number): string {
  const length = Math.floor(next() * 24);
  let out = "";
  for (let i = 0; i < length; i++) {
    const pick = next();
    if (pick < 0.6) out += NASTY[Math.floor(next() * NASTY.length)];
    else if (pick < 0.9) out += String.fromCharCode(32 + Math.floor(next() * 95));
    else out += String.fromCodePoint(1 + Math.floor(next() * 0x2ffff)).replace(/\p{Cs}/u, "x");
  }
  return out;
}

/** Runs `printf '%s\0' <quoted args>` through the shell and splits what comes back. */
async function throughShell(shell: string[], args: string[]): Promise<string[]> {
  const script = `printf '%s\\0' ${quoteArgv(args)}`;
  const { stdout } = await run(shell[0] as string, [...shell.slice(1), "-c", script], {
    encoding: "buffer",
    maxBuffer: 64 * 1024 * 1024,
  });
  const parts = stdout.toString("utf8").split("\0");
  parts.pop();
  return parts;
}

describe("quoteArg", () => {
  it("writes the empty string as ''", () => {
    expect(quoteArg("")).toBe("''");
  });

  it("leaves plain words bare so logged commands stay readable", () => {
    expect(quoteArg("zigpy_znp.tools.nvram_read")).toBe("zigpy_znp.tools.nvram_read");
    expect(quoteArg("/dev/ttyUSB0")).toBe("/dev/ttyUSB0");
  });

  it("quotes words a shell would interpret, including assignments and tildes", () => {
    expect(quoteArg("a=b")).toBe("'a=b'");
    expect(quoteArg("~")).toBe("'~'");
    expect(quoteArg("it's")).toBe("'it'\\''s'");
  });

  it("refuses a NUL byte, which no command line can carry", () => {
    expect(() => quoteArg("a\0b")).toThrow(ShellQuoteError);
    expect(() => quoteArg("a\0b")).toThrow(/NUL/);
  });

  it("refuses an unpaired surrogate instead of sending U+FFFD", () => {
    expect(() => quoteArg("a\ud800b")).toThrow(/surrogate/);
  });

  it("refuses a non-string", () => {
    expect(() => quoteArg(42 as unknown as string)).toThrow(/must be a string/);
  });
});

describe.each(shells)("quoted arguments survive $name unchanged", ({ argv: shell }) => {
  it.each(HOSTILE.map((value) => [JSON.stringify(value), value]))("%s", async (_label, value) => {
    const { stdout } = await run(
      shell[0] as string,
      [...shell.slice(1), "-c", `printf '%s' ${quoteArg(value)}`],
      {
        encoding: "buffer",
      },
    );
    expect(stdout.toString("utf8")).toBe(value);
  });

  it("all the hostile strings at once, as one argument vector", async () => {
    expect(await throughShell(shell, HOSTILE)).toEqual(HOSTILE);
  });

  it("500 random hostile strings (seeded), as one argument vector", async () => {
    const seed = 0x5eed ^ shell.join(" ").length;
    const next = mulberry32(seed);
    const inputs = Array.from({ length: 500 }, () => randomString(next));
    const outputs = await throughShell(shell, inputs);
    for (let i = 0; i < inputs.length; i++) {
      expect(outputs[i], `seed ${seed}, string #${i} ${JSON.stringify(inputs[i])}`).toBe(inputs[i]);
    }
    expect(outputs.length).toBe(inputs.length);
  });
});

describe("the shells under test", () => {
  it("include dash and, when installed, busybox ash", () => {
    expect(shells.map((shell) => shell.name)).toContain("/bin/dash");
  });
});
