import { isIP } from "node:net";
import { Bonjour } from "bonjour-service";
import type { Logger } from "pino";

/** The DNS-SD service type Home Assistant's manifest (zeroconf) listens for. */
export const SERVICE_TYPE = "zigbee2mqtt-ha";

export interface Announcement {
  stop(): Promise<void>;
}

export interface AnnounceOptions {
  /** The address the API listens on; loopback is never announced. */
  host: string;
  port: number;
  instanceId: string;
  clusterName: string;
  tls: boolean;
  logger: Logger;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * Announces the API over mDNS as `_zigbee2mqtt-ha._tcp` so Home Assistant's zeroconf discovery
 * finds it, with the TXT records its config flow reads (instance_id identifies a known sidecar
 * whose address changed; tls says https). Only an API that others can reach is announced: a
 * sidecar on loopback stays silent, and one bound to one address answers on that interface only.
 */
export function announce(options: AnnounceOptions): Announcement | undefined {
  if (isLoopback(options.host)) return undefined;
  const wildcard = options.host === "0.0.0.0" || options.host === "::";
  const mdnsOptions = !wildcard && isIP(options.host) === 4 ? { interface: options.host } : {};
  let bonjour: Bonjour;
  try {
    bonjour = new Bonjour(mdnsOptions as never, (error: Error) =>
      options.logger.warn({ err: error.message }, "mDNS announcement failed"),
    );
    bonjour.publish({
      name: `zigbee2mqtt-ha ${options.clusterName}`.slice(0, 63),
      type: SERVICE_TYPE,
      protocol: "tcp",
      port: options.port,
      disableIPv6: true,
      txt: {
        instance_id: options.instanceId,
        api_version: "1",
        path: "/",
        ...(options.tls ? { tls: "1" } : {}),
      },
    });
  } catch (error) {
    options.logger.warn({ err: (error as Error).message }, "mDNS announcement not started");
    return undefined;
  }
  options.logger.info({ type: `_${SERVICE_TYPE}._tcp`, port: options.port }, "announced over mDNS");
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        bonjour.unpublishAll(() => bonjour.destroy(() => resolve()));
        // unpublishAll sends goodbyes; never let a dead network hold up a shutdown.
        setTimeout(resolve, 1_000).unref();
      }),
  };
}
