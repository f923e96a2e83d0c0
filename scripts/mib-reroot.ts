/**
 * Regenerates ZIGBEE2MQTT-HA-MIB for another root OID, e.g. once the project (or an operator)
 * holds a Private Enterprise Number. Only the MODULE-IDENTITY's registration and the comment
 * naming the root change; every other OID of the module hangs off that root.
 *
 *   npm run mib:reroot -- --oid 1.3.6.1.4.1.N [--in FILE] [--out FILE]
 *
 * Without --out the module is written to standard output. The sidecar must then be configured
 * with the same root: snmp.enterprise_oid: 1.3.6.1.4.1.N.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkRootOid } from "../sidecar/notify/snmp-mib.js";

const ENTERPRISES = "1.3.6.1.4.1";
const REGISTRATION = /::= \{ enterprises( \d+)+ \}/g;
const ROOT_COMMENT = /^( *)-- Root: [^\n]*\n(?:\1--[^\n]*\S[^\n]*\n)*/m;

export const DEFAULT_MIB = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "mibs",
  "ZIGBEE2MQTT-HA-MIB.txt",
);

/** The root OID a module text registers, e.g. "1.3.6.1.4.1.32473.8485". */
export function mibRoot(text: string): string {
  const matches = [...text.matchAll(REGISTRATION)];
  if (matches.length !== 1) {
    throw new Error(`expected one "::= { enterprises … }" registration, found ${matches.length}`);
  }
  const arcs = (matches[0] as RegExpMatchArray)[0]
    .replace(/[^\d ]/g, "")
    .trim()
    .split(/\s+/);
  return [ENTERPRISES, ...arcs].join(".");
}

/** The module text with its root moved to `oid` (which must lie under 1.3.6.1.4.1). */
export function rerootMib(text: string, oid: string): string {
  const problem = checkRootOid(oid);
  if (problem) throw new Error(`bad root OID ${JSON.stringify(oid)}: ${problem}`);
  mibRoot(text);
  if (!ROOT_COMMENT.test(text)) throw new Error('the "-- Root: …" comment above the registration is missing');
  const arcs = oid
    .slice(ENTERPRISES.length + 1)
    .split(".")
    .join(" ");
  return text
    .replace(
      ROOT_COMMENT,
      (_all, indent: string) =>
        `${indent}-- Root: ${oid}, set with scripts/mib-reroot.ts\n` + `${indent}-- (see mibs/README.md).\n`,
    )
    .replace(REGISTRATION, `::= { enterprises ${arcs} }`);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      oid: { type: "string" },
      in: { type: "string", default: DEFAULT_MIB },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.oid) {
    process.stderr.write("usage: npm run mib:reroot -- --oid 1.3.6.1.4.1.N[.M…] [--in FILE] [--out FILE]\n");
    process.exit(values.help ? 0 : 2);
  }
  try {
    const text = rerootMib(readFileSync(values.in, "utf8"), values.oid);
    if (values.out) writeFileSync(values.out, text);
    else process.stdout.write(text);
  } catch (error) {
    process.stderr.write(`mib-reroot: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
