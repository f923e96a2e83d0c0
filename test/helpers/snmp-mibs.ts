import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
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
 * nothing else. Made once per process under the system's temp dir.
 */
export function baseMibDir(): string {
  if (baseDir) return baseDir;
  const require = createRequire(import.meta.url);
  const netSnmpMibs = join(dirname(require.resolve("net-snmp")), "lib", "mibs");
  const dir = mkdtempSync(join(tmpdir(), "z2mha-base-mibs-"));
  for (const module of BASE_MODULES) {
    const source = join(netSnmpMibs, `${module}.mib`);
    if (!existsSync(source)) throw new Error(`base MIB ${module} not found at ${source}`);
    symlinkSync(source, join(dir, `${module}.txt`));
  }
  if (!existsSync(NET_SNMP_MIB)) throw new Error(`${NET_SNMP_MIB} is missing (Debian package libsnmp-base)`);
  symlinkSync(NET_SNMP_MIB, join(dir, "NET-SNMP-MIB.txt"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  baseDir = dir;
  return dir;
}
