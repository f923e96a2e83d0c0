/**
 * The Home Assistant Supervisor's rules for an add-on repository, written down from its
 * validators (supervisor/apps/validate.py, apps/options.py, store/validate.py, validate.py of
 * home-assistant/supervisor, 2026), so that the add-on's files are checked without a Supervisor.
 * Stricter in one way, on purpose: the Supervisor silently drops keys it does not know, which
 * hides a typo; here an unknown key is an error.
 */

/** ARCH_ALL + ARCH_DEPRECATED: the last are accepted with a warning. */
export const ARCH_ALL = ["aarch64", "amd64"];
export const ARCH_DEPRECATED = ["armhf", "armv7", "i386"];
const STARTUP = ["initialize", "system", "services", "application", "once"];
const BOOT = ["auto", "manual", "manual_only"];
const STAGE = ["stable", "experimental", "deprecated"];
const ROLES = ["default", "homeassistant", "backup", "manager", "admin"];
const BACKUP = ["hot", "cold"];
const MAP_TYPES = [
  "data",
  "config",
  "ssl",
  "local_apps",
  "backup",
  "share",
  "media",
  "homeassistant_config",
  "all_app_configs",
  "app_config",
  "addons",
  "all_addon_configs",
  "addon_config",
];

const RE_SLUG = /^[-_.A-Za-z0-9]+$/;
const RE_SERVICE = /^(mqtt|mysql):(provide|want|need)$/;
const RE_VOLUME =
  /^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config|all_app_configs|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$/;
const RE_WATCHDOG = /^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$/;
const RE_WEBUI = /^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$/;
const RE_DOCKER_PORT = /^\d+(?:\/tcp|\/udp)?$/;
const RE_BUILD_IMAGE = /^([a-zA-Z\-.:\d{}]+\/)*?([-\w{}]+)\/([-\w{}]+)(:[.\-\w{}]+)?$/;
/** RE_SCHEMA_ELEMENT: the option types of `schema`, each optionally ending in "?". */
export const RE_SCHEMA_ELEMENT = new RegExp(
  "^(?:" +
    "|bool|email|url|port" +
    "|device(?:\\((?<filter>subsystem=[a-z]+)\\))?" +
    "|str(?:\\((?<s_min>\\d+)?,(?<s_max>\\d+)?\\))?" +
    "|password(?:\\((?<p_min>\\d+)?,(?<p_max>\\d+)?\\))?" +
    "|int(?:\\((?<i_min>-?\\d+)?,(?<i_max>-?\\d+)?\\))?" +
    "|float(?:\\((?<f_min>-?\\d*\\.?\\d+)?,(?<f_max>-?\\d*\\.?\\d+)?\\))?" +
    "|match\\((?<match>.*)\\)" +
    "|list\\((?<list>.+)\\)" +
    ")\\??$",
);

type Check = (value: unknown, path: string, problems: string[]) => void;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const str: Check = (v, path, p) => {
  if (typeof v !== "string") p.push(`${path}: expected a string`);
};
const bool: Check = (v, path, p) => {
  if (typeof v !== "boolean") p.push(`${path}: expected a boolean`);
};
const oneOf =
  (values: string[]): Check =>
  (v, path, p) => {
    if (typeof v !== "string" || !values.includes(v)) p.push(`${path}: expected one of ${values.join(", ")}`);
  };
const match =
  (re: RegExp, what: string): Check =>
  (v, path, p) => {
    if (typeof v !== "string" || !re.test(v)) p.push(`${path}: ${JSON.stringify(v)} is not ${what}`);
  };
const listOf =
  (item: Check): Check =>
  (v, path, p) => {
    if (!Array.isArray(v)) p.push(`${path}: expected a list`);
    else
      v.forEach((x, i) => {
        item(x, `${path}[${i}]`, p);
      });
  };
const networkPort: Check = (v, path, p) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) p.push(`${path}: not a port 1-65535`);
};
const version: Check = (v, path, p) => {
  if (typeof v !== "string" && typeof v !== "number") p.push(`${path}: expected a version`);
};
const url: Check = (v, path, p) => {
  try {
    new URL(String(v));
  } catch {
    p.push(`${path}: not a URL`);
  }
};
const dockerPorts: Check = (v, path, p) => {
  if (!isObject(v)) {
    p.push(`${path}: expected a mapping`);
    return;
  }
  for (const [key, port] of Object.entries(v)) {
    if (!RE_DOCKER_PORT.test(key)) p.push(`${path}.${key}: not "N/tcp" or "N/udp"`);
    if (port !== null) networkPort(port, `${path}.${key}`, p);
  }
};
const portsDescription: Check = (v, path, p) => {
  if (!isObject(v)) {
    p.push(`${path}: expected a mapping`);
    return;
  }
  for (const [key, text] of Object.entries(v)) {
    if (!RE_DOCKER_PORT.test(key)) p.push(`${path}.${key}: not "N/tcp" or "N/udp"`);
    str(text, `${path}.${key}`, p);
  }
};
const mapEntry: Check = (v, path, p) => {
  if (typeof v === "string") {
    if (!RE_VOLUME.test(v)) p.push(`${path}: ${v} is not a folder the Supervisor maps`);
  } else if (isObject(v)) {
    oneOf(MAP_TYPES)(v.type, `${path}.type`, p);
    if (v.read_only !== undefined) bool(v.read_only, `${path}.read_only`, p);
    if (v.path !== undefined) str(v.path, `${path}.path`, p);
  } else p.push(`${path}: expected a folder name or a mapping`);
};

/** SCHEMA_ELEMENT: a type string, a list of one type string or mapping (never a list), or a mapping. */
export function checkSchemaElement(value: unknown, path: string, problems: string[], inList = false): void {
  if (typeof value === "string") {
    if (!RE_SCHEMA_ELEMENT.test(value))
      problems.push(`${path}: unknown option type ${JSON.stringify(value)}`);
  } else if (Array.isArray(value)) {
    if (inList) problems.push(`${path}: a list may not directly contain another list`);
    else if (value.length !== 1) problems.push(`${path}: a list type holds exactly one element type`);
    else checkSchemaElement(value[0], `${path}[0]`, problems, true);
  } else if (isObject(value)) {
    for (const [key, element] of Object.entries(value))
      checkSchemaElement(element, `${path}.${key}`, problems);
  } else problems.push(`${path}: expected an option type, a list or a mapping`);
}

const CONFIG_KEYS: Record<string, Check> = {
  name: str,
  version,
  slug: match(RE_SLUG, "a slug"),
  description: str,
  arch: listOf(oneOf([...ARCH_ALL, ...ARCH_DEPRECATED])),
  machine: listOf(str),
  url,
  startup: oneOf(STARTUP),
  boot: oneOf(BOOT),
  init: bool,
  advanced: bool,
  stage: oneOf(STAGE),
  ports: dockerPorts,
  ports_description: portsDescription,
  watchdog: match(RE_WATCHDOG, "http(s)|tcp://[HOST]:[PORT:n]..."),
  webui: match(RE_WEBUI, "http(s)://[HOST]:[PORT:n]..."),
  ingress: bool,
  ingress_port: (v, path, p) => {
    if (v !== 0) networkPort(v, path, p);
  },
  ingress_entry: str,
  ingress_stream: bool,
  panel_icon: str,
  panel_title: str,
  panel_admin: bool,
  homeassistant: version,
  host_network: bool,
  host_pid: bool,
  host_ipc: bool,
  host_uts: bool,
  host_dbus: bool,
  devices: listOf(str),
  udev: bool,
  tmpfs: bool,
  map: listOf(mapEntry),
  environment: (v, path, p) => {
    if (!isObject(v)) p.push(`${path}: expected a mapping`);
    else for (const [k, x] of Object.entries(v)) str(x, `${path}.${k}`, p);
  },
  privileged: listOf(str),
  apparmor: (v, path, p) => {
    if (typeof v !== "boolean" && typeof v !== "string") p.push(`${path}: expected a boolean`);
  },
  full_access: bool,
  audio: bool,
  video: bool,
  gpio: bool,
  usb: bool,
  uart: bool,
  devicetree: bool,
  kernel_modules: bool,
  realtime: bool,
  hassio_api: bool,
  hassio_role: oneOf(ROLES),
  homeassistant_api: bool,
  stdin: bool,
  legacy: bool,
  docker_api: bool,
  auth_api: bool,
  services: listOf(match(RE_SERVICE, "mqtt|mysql:provide|want|need")),
  discovery: listOf(str),
  backup_exclude: listOf(str),
  backup_pre: str,
  backup_post: str,
  backup: oneOf(BACKUP),
  options: (v, path, p) => {
    if (!isObject(v)) p.push(`${path}: expected a mapping`);
  },
  schema: (v, path, p) => {
    if (v === false) return;
    if (!isObject(v)) {
      p.push(`${path}: expected a mapping or false`);
      return;
    }
    for (const [key, element] of Object.entries(v)) checkSchemaElement(element, `${path}.${key}`, p);
  },
  image: match(/^([a-z0-9.\-_:{}]+\/)*[a-z0-9{][a-z0-9.\-_{}]*$/, "an image name without a tag"),
  ulimits: (v, path, p) => {
    if (!isObject(v)) p.push(`${path}: expected a mapping`);
  },
  timeout: (v, path, p) => {
    if (!Number.isInteger(v) || (v as number) < 10 || (v as number) > 300) p.push(`${path}: 10-300 seconds`);
  },
  journald: bool,
  breaking_versions: listOf(version),
};

const REQUIRED_CONFIG = ["name", "version", "slug", "description", "arch"];

function checkKeys(
  doc: unknown,
  keys: Record<string, Check>,
  required: string[],
  where: string,
  problems: string[],
): void {
  if (!isObject(doc)) {
    problems.push(`${where}: expected a mapping`);
    return;
  }
  for (const key of required) if (!(key in doc)) problems.push(`${where}.${key}: required`);
  for (const [key, value] of Object.entries(doc)) {
    const check = keys[key];
    if (!check) problems.push(`${where}.${key}: not a key the Supervisor knows (it would drop it)`);
    else check(value, `${where}.${key}`, problems);
  }
}

/** Problems of an add-on's config.yaml (as parsed YAML); empty when the Supervisor accepts it. */
export function checkAddonConfig(config: unknown): string[] {
  const problems: string[] = [];
  checkKeys(config, CONFIG_KEYS, REQUIRED_CONFIG, "config", problems);
  if (isObject(config)) {
    const deprecated = ((config.arch as unknown[]) ?? []).filter((a) => ARCH_DEPRECATED.includes(String(a)));
    if (deprecated.length > 0)
      problems.push(`config.arch: deprecated architectures ${deprecated.join(", ")}`);
    if (config.ingress === true && config.ingress_port === 0 && isObject(config.ports)) {
      for (const key of Object.keys(config.ports)) {
        const n = Number(key.split("/")[0]);
        if (n >= 62000 && n <= 65500)
          problems.push(`config.ports.${key}: reserved for dynamic ingress ports (62000-65500)`);
      }
    }
    if (isObject(config.schema) && isObject(config.options))
      problems.push(...checkOptions(config.options, config.schema as Record<string, unknown>));
  }
  return problems;
}

/**
 * The Supervisor's check of options against the schema (AddonOptions): every key that is not
 * optional ("...?") must be there, values must have their type. Secrets ("!secret x") and devices
 * cannot be resolved here and are accepted.
 */
export function checkOptions(
  options: Record<string, unknown>,
  schema: Record<string, unknown>,
  where = "options",
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (!(key in schema)) {
      problems.push(`${where}.${key}: not in the schema (the Supervisor drops it)`);
      continue;
    }
    checkValue(schema[key], value, `${where}.${key}`, problems);
  }
  problems.push(...missing(schema, options, where));
  return problems;
}

function missing(schema: Record<string, unknown>, present: Record<string, unknown>, where: string): string[] {
  const out: string[] = [];
  for (const [key, type] of Object.entries(schema)) {
    if (key in present) continue;
    const element = Array.isArray(type) && type.length > 0 ? type[0] : type;
    if (typeof element === "string" && element.endsWith("?")) continue;
    out.push(`${where}.${key}: missing (not optional in the schema)`);
  }
  return out;
}

function checkValue(type: unknown, value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(type)) {
    if (!Array.isArray(value)) problems.push(`${path}: expected a list`);
    else
      value.forEach((v, i) => {
        checkValue(type[0], v, `${path}[${i}]`, problems);
      });
    return;
  }
  if (isObject(type)) {
    if (!isObject(value)) {
      problems.push(`${path}: expected a mapping`);
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      if (!(key in type)) problems.push(`${path}.${key}: not in the schema`);
      else checkValue(type[key], v, `${path}.${key}`, problems);
    }
    problems.push(...missing(type, value, path));
    return;
  }
  const t = String(type).replace(/\?$/, "");
  if (value === null || value === undefined) {
    problems.push(`${path}: required`);
    return;
  }
  if (typeof value === "string" && value.startsWith("!secret ")) return;
  const groups = RE_SCHEMA_ELEMENT.exec(String(type))?.groups ?? {};
  if (t.startsWith("str") || t.startsWith("password")) {
    if (typeof value !== "string" && typeof value !== "number") problems.push(`${path}: expected a string`);
    const length = String(value).length;
    const min = groups.s_min ?? groups.p_min;
    const max = groups.s_max ?? groups.p_max;
    if (min !== undefined && length < Number(min)) problems.push(`${path}: shorter than ${min}`);
    if (max !== undefined && length > Number(max)) problems.push(`${path}: longer than ${max}`);
  } else if (t.startsWith("int")) {
    if (!Number.isInteger(Number(value))) problems.push(`${path}: expected an integer`);
  } else if (t.startsWith("float")) {
    if (Number.isNaN(Number(value))) problems.push(`${path}: expected a number`);
  } else if (t === "bool") {
    if (typeof value !== "boolean") problems.push(`${path}: expected true or false`);
  } else if (t === "port") {
    networkPort(value, path, problems);
  } else if (t === "url") {
    url(value, path, problems);
  } else if (t.startsWith("match(")) {
    if (!new RegExp(`^(?:${groups.match})$`).test(String(value)))
      problems.push(`${path}: ${JSON.stringify(value)} does not match ${groups.match}`);
  } else if (t.startsWith("list(")) {
    if (!(groups.list ?? "").split("|").includes(String(value)))
      problems.push(`${path}: ${JSON.stringify(value)} is not one of ${groups.list}`);
  }
}

/** Problems of build.yaml (SCHEMA_BUILD_CONFIG), and its architectures against config.yaml's. */
export function checkBuildConfig(build: unknown, arch: string[]): string[] {
  const problems: string[] = [];
  const image = match(RE_BUILD_IMAGE, "an image reference");
  checkKeys(
    build,
    {
      build_from: (v, path, p) => {
        if (typeof v === "string") image(v, path, p);
        else if (isObject(v)) {
          for (const [a, ref] of Object.entries(v)) {
            oneOf([...ARCH_ALL, ...ARCH_DEPRECATED])(a, `${path}.${a}`, p);
            image(ref, `${path}.${a}`, p);
          }
          for (const a of arch)
            if (!(a in v)) p.push(`${path}.${a}: no base image for an architecture of config.yaml`);
        } else p.push(`${path}: expected an image or a mapping`);
      },
      squash: bool,
      args: (v, path, p) => {
        if (!isObject(v)) p.push(`${path}: expected a mapping`);
        else for (const [k, x] of Object.entries(v)) str(x, `${path}.${k}`, p);
      },
      labels: (v, path, p) => {
        if (!isObject(v)) p.push(`${path}: expected a mapping`);
      },
    },
    [],
    "build",
    problems,
  );
  return problems;
}

/** Problems of repository.yaml (SCHEMA_REPOSITORY_CONFIG). */
export function checkRepositoryConfig(repository: unknown): string[] {
  const problems: string[] = [];
  checkKeys(repository, { name: str, url, maintainer: str }, ["name"], "repository", problems);
  return problems;
}

/** Problems of translations/<lang>.yaml (SCHEMA_APP_TRANSLATIONS), its keys against the schema and ports. */
export function checkTranslations(translations: unknown, config: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const schema = isObject(config.schema) ? config.schema : {};
  const ports = isObject(config.ports) ? config.ports : {};
  checkKeys(
    translations,
    {
      configuration: (v, path, p) => {
        if (!isObject(v)) {
          p.push(`${path}: expected a mapping`);
          return;
        }
        for (const [key, entry] of Object.entries(v)) {
          if (!(key in schema)) p.push(`${path}.${key}: no such option in the schema`);
          checkKeys(
            entry,
            { name: str, description: str, fields: () => undefined },
            ["name"],
            `${path}.${key}`,
            p,
          );
        }
      },
      network: (v, path, p) => {
        if (!isObject(v)) {
          p.push(`${path}: expected a mapping`);
          return;
        }
        for (const [key, text] of Object.entries(v)) {
          if (!(key in ports)) p.push(`${path}.${key}: no such port in config.yaml`);
          str(text, `${path}.${key}`, p);
        }
      },
    },
    [],
    "translations",
    problems,
  );
  return problems;
}
