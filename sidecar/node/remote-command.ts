import { quoteArg, quoteArgv, ShellQuoteError } from "./quote.js";

/**
 * The one string the SSH server passes to the node user's login shell for `argv`.
 *
 * `exec` makes the program replace the shell, so the exit status and a terminating signal reach
 * us as the program's own (not the shell's 128+n), and the process the server signals on a timeout
 * is the program itself. Every word, including `cwd`, goes through quoteArg: nothing from config or
 * from a caller is ever pasted into the command line unquoted.
 */
export function buildRemoteCommand(argv: readonly string[], options: { cwd?: string } = {}): string {
  const program = argv[0];
  if (program === undefined || program === "") {
    throw new ShellQuoteError("a remote command needs at least a program name");
  }
  if (program.startsWith("-")) {
    // `exec -x` would be read as an option of exec itself, quoted or not.
    throw new ShellQuoteError(`program name ${JSON.stringify(program)} must not start with "-"`);
  }
  const run = `exec ${quoteArgv(argv)}`;
  if (options.cwd === undefined) return run;
  if (!options.cwd.startsWith("/")) {
    throw new ShellQuoteError(`working directory ${JSON.stringify(options.cwd)} must be an absolute path`);
  }
  return `cd ${quoteArg(options.cwd)} && ${run}`;
}
