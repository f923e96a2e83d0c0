import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MIBS_DIR = join(REPO, "mibs");
export const FIXTURE_MIBS_DIR = join(REPO, "test", "fixtures", "mibs");

/**
 * The SMIv2 base modules every MIB imports. Debian's snmp packages leave them out (they come
 * with the non-free snmp-mibs-downloader), so the tests take the IETF modules that the net-snmp
 * npm package ships; NET-SNMP-MIB (for the prototype's fixture) comes from Debian's libsnmp-base.
 */
const BASE_MODULES = ["SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMPv2-MIB"];
const NET_SNMP_MIB = "/usr/share/snmp/mibs/NET-SNMP-MIB.txt";

let baseDir: string | undefined;

/**
 * A directory holding exactly the base modules (as links), so that tools given `-m ALL` load
 * nothing else. It lives at a fixed place under the system's temp dir, keyed by where the
 * modules come from, and is reused by every test process (made once, atomically).
 */
export function baseMibDir(): string {
  if (baseDir) return baseDir;
  const require = createRequire(import.meta.url);
  const netSnmpMibs = join(dirname(require.resolve("net-snmp")), "lib", "mibs");
  const sources = [
    ...BASE_MODULES.map((module) => [join(netSnmpMibs, `${module}.mib`), `${module}.txt`]),
    [NET_SNMP_MIB, "NET-SNMP-MIB.txt"],
  ] as const;
  for (const [source] of sources) {
    if (!existsSync(source))
      throw new Error(`MIB module missing: ${source} (net-snmp npm package, libsnmp-base)`);
  }
  const key = createHash("sha256").update(netSnmpMibs).digest("hex").slice(0, 12);
  const dir = join(tmpdir(), `z2mha-base-mibs-${process.getuid?.() ?? 0}-${key}`);
  if (!sources.every(([, name]) => existsSync(join(dir, name)))) {
    const staging = mkdtempSync(`${dir}.tmp-`);
    for (const [source, name] of sources) symlinkSync(source, join(staging, name));
    try {
      renameSync(staging, dir);
    } catch {
      // Another test process made it first; theirs is as good as ours.
      rmSync(staging, { recursive: true, force: true });
      if (!sources.every(([, name]) => existsSync(join(dir, name)))) {
        throw new Error(`cannot prepare the base MIB directory ${dir}`);
      }
    }
  }
  baseDir = dir;
  return dir;
}
