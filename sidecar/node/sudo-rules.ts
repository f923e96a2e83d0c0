/**
 * Reading what sudo allows the SSH user (`sudo -n -l`) and judging it against what the sidecar
 * needs: the service commands with their fixed arguments. Whatever else the user may run as root
 * is reachable by anyone holding the sidecar's SSH key.
 */

export interface SudoEntry {
  /** "(root)", "(ALL : ALL)". */
  runas: string;
  /** NOPASSWD, SETENV, ... */
  tags: string[];
  /** As sudo prints it: "/sbin/rc-service zigbee2mqtt start", "ALL". */
  command: string;
}

/**
 * The command entries of `sudo -l` output, after the line "User X may run the following commands
 * on H:". Each line is "(runas) [TAG: ...] cmd, cmd, ..."; a comma inside a command is escaped
 * as "\,". Lines of another form (Defaults, headings) are skipped.
 */
export function parseSudoList(output: string): SudoEntry[] {
  const entries: SudoEntry[] = [];
  let inCommands = false;
  for (const raw of output.split("\n")) {
    if (/may run the following commands/.test(raw)) {
      inCommands = true;
      continue;
    }
    if (!inCommands) continue;
    const line = raw.trim();
    const match = /^(\([^)]*\))\s*(.*)$/.exec(line);
    if (!match) continue;
    let rest = match[2] ?? "";
    const tags: string[] = [];
    for (let tag = /^([A-Z_]+):\s*/.exec(rest); tag; tag = /^([A-Z_]+):\s*/.exec(rest)) {
      tags.push(tag[1] as string);
      rest = rest.slice(tag[0].length);
    }
    for (const command of splitUnescaped(rest, ",")) {
      const trimmed = command.trim();
      if (trimmed) entries.push({ runas: match[1] as string, tags, command: trimmed });
    }
  }
  return entries;
}

export interface SudoJudgement {
  /** Entries that are exactly a needed command. */
  needed: SudoEntry[];
  /** Entries beyond what is needed; `dangerous` when they amount to root for a stolen key. */
  extra: { entry: SudoEntry; dangerous: boolean; why: string }[];
}

/** Programs that, run as root with arguments of the caller's choosing, run anything or write anywhere. */
const ROOT_FOR_ANYONE = new Set([
  "sh",
  "bash",
  "ash",
  "dash",
  "zsh",
  "ksh",
  "busybox",
  "env",
  "su",
  "sudo",
  "sudoedit",
  "perl",
  "ruby",
  "node",
  "nodejs",
  "lua",
  "php",
  "vi",
  "vim",
  "nano",
  "less",
  "more",
  "tee",
  "cp",
  "mv",
  "dd",
  "rsync",
  "tar",
  "chmod",
  "chown",
  "install",
  "ln",
  "find",
  "awk",
  "sed",
]);

/**
 * Sorts sudo's entries into needed (one of `needed`, program compared by name since sudo prints
 * the sudoers' path and accepts any path to the same file) and extra. An extra entry is dangerous
 * when it is ALL, has a wildcard, allows any arguments (no arguments written), runs a shell, an
 * interpreter or a file-writing tool, or touches zigpy_znp (whose tools write `-o FILE` anywhere).
 */
export function judgeSudo(entries: SudoEntry[], needed: readonly (readonly string[])[]): SudoJudgement {
  const result: SudoJudgement = { needed: [], extra: [] };
  for (const entry of entries) {
    if (entry.command.startsWith("!")) continue;
    const words = splitWords(entry.command);
    const program = basename(words[0] ?? "");
    if (needed.some((argv) => sameCommand(words, argv))) {
      result.needed.push(entry);
      continue;
    }
    const why = dangerOf(entry.command, words, program);
    result.extra.push({ entry, dangerous: why !== undefined, why: why ?? "not needed by zigbee2mqtt-ha" });
  }
  return result;
}

function dangerOf(command: string, words: string[], program: string): string | undefined {
  if (command === "ALL") return "any command as root";
  if (/zigpy_znp/.test(command))
    return "the zigpy-znp tools as root: their -o FILE writes any file as root (run them without sudo, the user in dialout)";
  if (/(^|[^\\])[*?[]/.test(command)) return "a wildcard lets the caller choose the arguments";
  if (/^python[0-9.]*$/.test(program) || ROOT_FOR_ANYONE.has(program))
    return `${program} as root runs or writes anything`;
  if (words.length === 1) return "no arguments written in sudoers means any arguments";
  return undefined;
}

function sameCommand(words: string[], argv: readonly string[]): boolean {
  if (words.length !== argv.length) return false;
  if (basename(words[0] ?? "") !== basename(argv[0] ?? "")) return false;
  return words.slice(1).every((word, i) => word === argv[i + 1]);
}

function basename(path: string): string {
  return path.split("/").pop() ?? path;
}

/** Splits on `separator` where it is not escaped with a backslash. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\\" && i + 1 < text.length) {
      current += c + text[++i];
    } else if (c === separator) {
      parts.push(current);
      current = "";
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** The words of a sudoers command, backslash escapes undone. */
function splitWords(command: string): string[] {
  const words: string[] = [];
  let current = "";
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (c === "\\" && i + 1 < command.length) {
      current += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = "";
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}
