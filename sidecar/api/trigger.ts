import type { IncomingHttpHeaders } from "node:http";

/** Who asked, for the operation history: clients name themselves in a header, everything else is "api". */
export function triggerOf(headers: IncomingHttpHeaders): string {
  const client = headers["x-z2mha-client"];
  return typeof client === "string" && /^[a-z0-9-]{1,32}$/.test(client) ? client : "api";
}
