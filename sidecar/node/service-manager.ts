/**
 * The two service managers zigbee2mqtt nodes run (OpenRC on Alpine, systemd on Debian and
 * Raspberry Pi OS): the commands the sidecar uses for the zigbee2mqtt service, the one sudo rule
 * they need, and how each tells whether a service starts at boot. Used by `z2m-ha init` to write
 * a config, by `z2m-ha doctor` to check a node, and by docs/nodes.md (the lab runs its blocks).
 */

export type ServiceManager = "openrc" | "systemd";

/** Where each manager's control program lives; sudoers rules must name the full path. */
export const MANAGER_PROGRAM: Record<ServiceManager, string> = {
  openrc: "/sbin/rc-service",
  systemd: "/usr/bin/systemctl",
};

export interface ServiceCommands {
  start: string[];
  stop: string[];
  status: string[];
}

/**
 * The service commands for a manager. OpenRC's status goes through sudo like start and stop (as
 * the config's defaults have it); systemd answers `is-active` to anyone (exit 0 active, 3 not).
 */
export function serviceCommands(manager: ServiceManager, service: string): ServiceCommands {
  checkServiceName(service);
  if (manager === "openrc") {
    return {
      start: ["sudo", "rc-service", service, "start"],
      stop: ["sudo", "rc-service", service, "stop"],
      status: ["sudo", "rc-service", service, "status"],
    };
  }
  return {
    start: ["sudo", "systemctl", "start", service],
    stop: ["sudo", "systemctl", "stop", service],
    status: ["systemctl", "is-active", service],
  };
}

/**
 * The sudoers rule the SSH user needs, and nothing more: exactly the service commands, each with
 * its fixed arguments (no wildcard). The coordinator tools are not in it: they run as the user,
 * who owns the serial port through the dialout group.
 */
export function sudoersRule(user: string, manager: ServiceManager, service: string): string {
  checkUserName(user);
  checkServiceName(service);
  const program = MANAGER_PROGRAM[manager];
  const commands =
    manager === "openrc"
      ? ["start", "stop", "status"].map((action) => `${program} ${service} ${action}`)
      : ["start", "stop"].map((action) => `${program} ${action} ${service}`);
  return `${user} ALL=(root) NOPASSWD: ${commands.join(", ")}`;
}

/** The manager whose program a service command runs, if it is one of ours. */
export function managerOf(argv: readonly string[]): ServiceManager | undefined {
  const words = argv[0] === "sudo" ? argv.slice(1) : argv;
  const program = (words[0] ?? "").split("/").pop();
  if (program === "rc-service") return "openrc";
  if (program === "systemctl") return "systemd";
  return undefined;
}

/** The service name in a start command of either manager ("zigbee2mqtt"). */
export function serviceNameOf(argv: readonly string[]): string | undefined {
  const words = argv[0] === "sudo" ? argv.slice(1) : argv;
  const manager = managerOf(words);
  if (manager === "openrc") return words[1];
  if (manager === "systemd") return words.slice(1).find((w) => !w.startsWith("-") && !ACTIONS.has(w));
  return undefined;
}

const ACTIONS = new Set(["start", "stop", "restart", "status", "is-active"]);

/**
 * The runlevels `rc-update show -v` lists for a service; empty when it is in none (not started at
 * boot). Lines look like "        zigbee2mqtt | default" (name right-aligned, then the runlevels).
 */
export function openrcRunlevels(rcUpdateShow: string, service: string): string[] {
  for (const line of rcUpdateShow.split("\n")) {
    const match = /^\s*(\S+)\s*\|\s*(.*)$/.exec(line);
    if (match?.[1] === service) return (match[2] ?? "").trim().split(/\s+/).filter(Boolean);
  }
  return [];
}

/**
 * What `systemctl is-enabled UNIT` printed says about boot: "enabled" and "enabled-runtime" units
 * are wanted by a boot target; "disabled" and "masked" ones are not started by anything. The rest
 * ("static", "indirect", "generated", ...) start only when another unit pulls them in, which
 * cannot be told from here.
 */
export function systemdBoot(isEnabled: string): "starts-at-boot" | "not-at-boot" | "unclear" {
  const state = isEnabled.trim();
  if (state === "enabled" || state === "enabled-runtime") return "starts-at-boot";
  if (state === "disabled" || state === "masked" || state === "masked-runtime") return "not-at-boot";
  return "unclear";
}

function checkServiceName(service: string): void {
  if (!/^[A-Za-z0-9_.@-]+$/.test(service)) throw new Error(`bad service name ${JSON.stringify(service)}`);
}

function checkUserName(user: string): void {
  if (!/^[a-z_][a-z0-9_.-]*$/.test(user)) throw new Error(`bad user name ${JSON.stringify(user)}`);
}
