import { type CliCommand, type CliIO, EXIT, packageVersion } from "./command.js";
import { commands } from "./commands/index.js";

function help(io: CliIO, list: CliCommand[]): void {
  io.out("autofix: turn failing CI into reviewed, evidence-backed draft PRs\n");
  io.out("usage: autofix <command> [options]   (autofix <command> --help for its options)\n");
  io.out("commands:");
  for (const c of list) io.out(`  ${c.usage}\n      ${c.summary}`);
  io.out("\n  autofix --version\n      print the version");
}

/** Pick the subcommand whose name matches the most leading words. */
export async function runCli(argv: string[], io: CliIO, list: CliCommand[] = commands): Promise<number> {
  const first = argv[0];
  // `autofix help run` is `autofix run --help`.
  if (first === "help" && argv.length > 1) return runCli([...argv.slice(1), "--help"], io, list);
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    help(io, list);
    return first === undefined ? EXIT.badInput : EXIT.ok;
  }
  if (first === "--version" || first === "-V" || first === "version") {
    io.out(packageVersion());
    return EXIT.ok;
  }
  const match = list
    .filter((c) => c.name.every((w, i) => argv[i] === w))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!match) {
    // A group word alone (`autofix config`): name its subcommands.
    const group = list.filter((c) => c.name.length > 1 && c.name[0] === first);
    if (group.length > 0) {
      const asked = argv[1] === "--help" || argv[1] === "-h";
      const say = asked ? io.out : io.err;
      if (!asked)
        say(
          argv.length > 1
            ? `autofix ${first}: unknown subcommand "${argv[1]}"`
            : `autofix ${first} needs a subcommand:`,
        );
      else say(`autofix ${first} has ${group.length === 1 ? "one subcommand" : "these subcommands"}:`);
      for (const c of group) say(`  ${c.usage}\n      ${c.summary}`);
      return asked ? EXIT.ok : EXIT.badInput;
    }
    io.err(`unknown command "${first}"; run "autofix --help" for the list`);
    return EXIT.badInput;
  }
  return match.run(argv.slice(match.name.length), io);
}
