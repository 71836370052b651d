import { type CliCommand, type CliIO, EXIT } from "./command.js";
import { commands } from "./commands/index.js";

function help(io: CliIO, list: CliCommand[]): void {
  io.out("autofix: turn failing CI into reviewed, evidence-backed draft PRs\n");
  io.out("usage:");
  for (const c of list) io.out(`  ${c.usage}\n      ${c.summary}`);
}

/** Pick the subcommand whose name matches the most leading words. */
export async function runCli(argv: string[], io: CliIO, list: CliCommand[] = commands): Promise<number> {
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    help(io, list);
    return argv.length === 0 ? EXIT.badInput : EXIT.ok;
  }
  const match = list
    .filter((c) => c.name.every((w, i) => argv[i] === w))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!match) {
    io.err(`unknown command "${argv.join(" ")}"; run "autofix help" for the list`);
    return EXIT.badInput;
  }
  return match.run(argv.slice(match.name.length), io);
}
