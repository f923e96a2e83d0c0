import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * The project's shared test data (real NVRAM dumps of a CC2652R) lives outside the repository,
 * beside it in ../shared/data, because it is third-party data we may use but not redistribute.
 * Z2MHA_SHARED_DATA overrides the location. A missing directory is an error, never a skip.
 */
export function sharedData(...parts: string[]): string {
  const candidates = [
    process.env.Z2MHA_SHARED_DATA,
    resolve(import.meta.dirname, "../../../shared/data"),
    "/work/shared/data",
  ].filter((p): p is string => Boolean(p));
  const dir = candidates.find((p) => existsSync(p));
  if (!dir)
    throw new Error(`shared test data not found (tried ${candidates.join(", ")}); set Z2MHA_SHARED_DATA`);
  return join(dir, ...parts);
}
