import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Outcome } from "../contracts/outcome.js";

/** A CLI subcommand. Each lives in its own file under commands/ and is listed in main.ts. */
export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliCommand {
  /** Words that select it: ["validate"] or ["config", "check"]. */
  name: string[];
  usage: string;
  summary: string;
  /** Returns the exit code. */
  run: (args: string[], io: CliIO) => Promise<number>;
}

/** Exit codes shared by every subcommand (and by `autofix run`: 3 is a partial result). */
export const EXIT = { ok: 0, failed: 1, badInput: 2, partial: 3 } as const;

/** The exit code of a run that ended with `outcome`. */
export const OUTCOME_EXIT: Readonly<Record<Outcome, number>> = {
  succeeded: EXIT.ok,
  partial: EXIT.partial,
  failed: EXIT.failed,
  cancelled: EXIT.failed,
  timed_out: EXIT.failed,
};

/** One option of a subcommand: what util.parseArgs needs, plus the words of its --help line. */
export interface OptionHelp {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help (PATH, BYTES); string options only. */
  value?: string;
  help: string;
}

export interface CommandSpec {
  usage: string;
  summary: string;
  options?: Record<string, OptionHelp>;
  /** Positional arguments: [fewest, most] (most: Infinity for any number). Default [0, 0]. */
  positionals?: [number, number];
  /** What to say when fewer positionals than `positionals[0]` are given. */
  missing?: string;
  /** Lines after the options in --help (examples, notes). */
  notes?: string[];
}

/** Whether the arguments ask for help (`--help` or `-h` before a `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/** The --help text of a subcommand: usage, what it does, its options. */
export function helpText(spec: CommandSpec): string[] {
  const options = Object.entries(spec.options ?? {}).map(([name, o]) => ({
    flag: `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`,
    help: `${o.help}${o.multiple ? " (may be repeated)" : ""}`,
  }));
  options.push({ flag: "-h, --help", help: "show this help and exit" });
  const width = Math.max(...options.map((o) => o.flag.length));
  return [
    `usage: ${spec.usage}`,
    "",
    spec.summary,
    "",
    "options:",
    ...options.map((o) => `  ${o.flag.padEnd(width)}  ${o.help}`),
    ...(spec.notes?.length ? ["", ...spec.notes] : []),
  ];
}

/**
 * util.parseArgs' complaint in plain words, naming the flag: "unknown option --frob" (Node's own
 * message ends with an unbalanced quote and advice about `--` nobody needs).
 */
export function describeParseError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = e?.message ?? String(err);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (e?.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted ?? message}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${JSON.stringify(quoted ?? message)}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = quoted?.replace(/ <value>$/, "") ?? "";
      if (/argument missing/.test(message)) return `option ${flag} needs a value`;
      if (/does not take an argument/.test(message)) return `option ${flag} takes no value`;
      if (/ambiguous/.test(message))
        return `option ${flag} needs a value (a value that starts with a dash is written ${flag}=-VALUE)`;
      return message.split("\n")[0]!;
    }
    default:
      return message.split("\n")[0]!;
  }
}

/** Clean up a parser message that arrives as text (a parser this file does not call). */
export function tidyParseMessage(message: string): string {
  const m = /^Unknown option '([^']+)'/.exec(message);
  if (m) return `unknown option ${m[1]}`;
  return message.split("\n")[0]!;
}

export interface ParsedCommand {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/**
 * The one argument parser of every subcommand: `--help`/`-h` prints the command's help (exit 0);
 * an unknown flag, a missing value or a wrong number of arguments names the problem and the
 * usage on stderr (exit 2). Returns the parsed arguments, or the exit code to return.
 */
export function parseCommand(spec: CommandSpec, args: string[], io: CliIO): ParsedCommand | number {
  if (wantsHelp(args)) {
    for (const l of helpText(spec)) io.out(l);
    return EXIT.ok;
  }
  const [fewest, most] = spec.positionals ?? [0, 0];
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, o] of Object.entries(spec.options ?? {}))
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
  let parsed: ParsedCommand;
  try {
    parsed = parseArgs({ args, options, allowPositionals: most > 0, strict: true }) as ParsedCommand;
  } catch (err) {
    return usageError(spec, io, describeParseError(err));
  }
  const n = parsed.positionals.length;
  if (n > most)
    return usageError(
      spec,
      io,
      most === 0
        ? `unexpected argument ${JSON.stringify(parsed.positionals[0])}`
        : `too many arguments: ${parsed.positionals.slice(most).join(" ")}`,
    );
  if (n < fewest) return usageError(spec, io, spec.missing ?? "missing argument");
  return parsed;
}

/** A problem with the arguments: the problem, the usage, a pointer to --help; exit 2. */
export function usageError(spec: Pick<CommandSpec, "usage">, io: CliIO, problem: string): number {
  const cmd = spec.usage.split(/\s+(?=[[<-])/)[0] ?? "autofix";
  io.err(`${cmd}: ${problem}`);
  io.err(`usage: ${spec.usage}`);
  io.err(`run "${cmd} --help" for the options`);
  return EXIT.badInput;
}

let version: string | undefined;

/**
 * The package's version, read from the package.json above this file at run time: the same code
 * works from src/ (tests) and from dist/src/ (the built CLI).
 */
export function packageVersion(): string {
  version ??= findVersion(dirname(fileURLToPath(import.meta.url)));
  return version;
}

function findVersion(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "autofix" && pkg.version) return pkg.version;
    } catch {
      // No package.json here: look one folder up.
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

/**
 * The IO of the real process. A reader that goes away (`autofix ... | head`) makes the next write
 * fail with EPIPE: the rest of the output is dropped quietly and the command finishes (its report,
 * its cleanup) with its own exit code, instead of dying on an unhandled 'error' event.
 */
export function streamIO(
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv,
  cwd: string,
): CliIO {
  let outClosed = false;
  let errClosed = false;
  const onError = (which: "out" | "err") => (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE" && err.code !== "ERR_STREAM_DESTROYED" && which === "out") {
      // Anything else on stdout (a full disk) is worth a line on stderr, once.
      if (!errClosed) stderr.write(`autofix: cannot write the output: ${err.message}\n`);
    }
    if (which === "out") outClosed = true;
    else errClosed = true;
  };
  stdout.on("error", onError("out"));
  stderr.on("error", onError("err"));
  return {
    out: (l) => {
      if (!outClosed) stdout.write(`${l}\n`);
    },
    err: (l) => {
      if (!errClosed) stderr.write(`${l}\n`);
    },
    env,
    cwd,
  };
}
