/**
 * POSIX shell quoting. SSH has no argument vector: the server hands one string to the user's login
 * shell (`$SHELL -c "<string>"`), so every argument we send must survive that shell's parsing
 * unchanged. Single quotes are the one construct inside which a POSIX shell interprets nothing at
 * all, so each argument becomes '...' with every embedded ' written as '\'' (close, escaped quote,
 * reopen). This holds for sh, dash, bash, busybox ash and zsh; it does not hold for non-POSIX login
 * shells such as fish or csh, which is why docs/ssh.md requires a POSIX login shell on the nodes.
 */

export class ShellQuoteError extends Error {
  override readonly name = "ShellQuoteError";
}

/**
 * Words made only of these characters mean the same to every POSIX shell whether quoted or not, so
 * they are left bare to keep logged commands readable. `=` (assignment words), `~` (tilde
 * expansion) and everything with a meaning to a shell are deliberately absent.
 */
const BARE = /^[A-Za-z0-9_@%+:,./-]+$/;

/** A UTF-16 surrogate not part of a pair cannot be encoded as UTF-8 and would arrive as U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u;

export function quoteArg(arg: string): string {
  if (typeof arg !== "string") {
    throw new ShellQuoteError(`a command argument must be a string, got ${typeof arg}`);
  }
  if (arg.includes("\0")) {
    throw new ShellQuoteError(
      `argument ${JSON.stringify(arg)} contains a NUL byte, which no command line can carry`,
    );
  }
  if (LONE_SURROGATE.test(arg)) {
    throw new ShellQuoteError(
      `argument ${JSON.stringify(arg)} contains an unpaired UTF-16 surrogate, which has no UTF-8 form`,
    );
  }
  if (arg === "") return "''";
  if (BARE.test(arg)) return arg;
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Quotes each argument and joins them with spaces: the shell sees exactly `argv` as its words. */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(" ");
}
