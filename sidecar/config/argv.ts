/**
 * Splits a command written as one string in the config ("sudo rc-service zigbee2mqtt start") into
 * an argument vector, honouring single and double quotes and backslash escapes. Shell operators are
 * refused instead of being passed on: every argument is quoted again before it reaches the node's
 * shell, so "a && b" would silently run `a` with the arguments "&&" and "b".
 */
export function splitCommand(input: string): { argv: string[] } | { error: string } {
  const argv: string[] = [];
  let current = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as string;
    if (quote === "'") {
      if (c === "'") quote = null;
      else current += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < input.length && '"\\$`'.includes(input[i + 1] as string))
        current += input[++i];
      else if (c === "$" || c === "`")
        return { error: `shell expansion ${c} is not allowed; use the list form` };
      else current += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 >= input.length) return { error: "trailing backslash" };
      current += input[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) argv.push(current);
      current = "";
      inWord = false;
    } else if (";&|<>()$`*?[]{}~#".includes(c) && !(inWord && "#~".includes(c))) {
      return { error: `shell operator ${JSON.stringify(c)} is not allowed; use the list form` };
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) return { error: `unterminated ${quote} quote` };
  if (inWord) argv.push(current);
  if (argv.length === 0) return { error: "empty command" };
  return { argv };
}
