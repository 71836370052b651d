import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseRepoConfig, REPO_CONFIG_PATH } from "../../config/repo-config.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand } from "../command.js";

const SPEC: CommandSpec = {
  usage: `autofix config check [FILE] [--print]`,
  summary: `validate a repository's ${REPO_CONFIG_PATH} (FILE defaults to it; a missing default file means every default applies); --print shows the effective settings`,
  options: {
    print: {
      type: "boolean",
      help: "print the effective settings (defaults filled in) as JSON on stdout; every other line goes to stderr",
    },
  },
  positionals: [0, 1],
};

export const configCheckCommand: CliCommand = {
  name: ["config", "check"],
  usage: SPEC.usage,
  summary: SPEC.summary,
  async run(args, io) {
    const parsed = parseCommand(SPEC, args, io);
    if (typeof parsed === "number") return parsed;
    const print = parsed.values.print === true;
    // With --print, stdout is the JSON alone (to pipe into jq); the words go to stderr.
    const say = print ? io.err : io.out;
    const named = parsed.positionals[0];
    const file = resolve(io.cwd, named ?? REPO_CONFIG_PATH);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" || named !== undefined) {
        io.err(
          `cannot read ${file}: ${code === "ENOENT" ? "no such file" : (code ?? (err as Error).message)}`,
        );
        return EXIT.badInput;
      }
      // The repository has no config file: that is allowed, every setting has its default.
      say(`${file} does not exist: every setting has its default (a missing file is fine)`);
      text = "";
    }
    const result = parseRepoConfig(text);
    for (const w of result.warnings) io.err(`warning: ${w}`);
    if (!result.ok) {
      io.err(`${file} is invalid:`);
      for (const e of result.errors) io.err(`  - ${e}`);
      return EXIT.badInput;
    }
    if (text !== "" || named !== undefined)
      say(
        `${file} is valid${result.warnings.length ? ` (${result.warnings.length} warning${result.warnings.length > 1 ? "s" : ""})` : ""}`,
      );
    if (print) io.out(JSON.stringify(result.config, null, 2));
    return EXIT.ok;
  },
};
