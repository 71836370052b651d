import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseRepoConfig, REPO_CONFIG_PATH } from "../../config/repo-config.js";
import { type CliCommand, EXIT } from "../command.js";

export const configCheckCommand: CliCommand = {
  name: ["config", "check"],
  usage: `autofix config check [${REPO_CONFIG_PATH}] [--print]`,
  summary: "validate a repository's autofix.yml; --print shows the effective settings with defaults",
  async run(args, io) {
    const print = args.includes("--print");
    const files = args.filter((a) => a !== "--print");
    if (files.length > 1 || files.some((f) => f.startsWith("-"))) {
      io.err(`usage: ${this.usage}`);
      return EXIT.badInput;
    }
    const file = resolve(io.cwd, files[0] ?? REPO_CONFIG_PATH);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      io.err(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return EXIT.badInput;
    }
    const result = parseRepoConfig(text);
    for (const w of result.warnings) io.out(`warning: ${w}`);
    if (!result.ok) {
      io.err(`${file} is invalid:`);
      for (const e of result.errors) io.err(`  - ${e}`);
      return EXIT.badInput;
    }
    io.out(
      `${file} is valid${result.warnings.length ? ` (${result.warnings.length} warning${result.warnings.length > 1 ? "s" : ""})` : ""}`,
    );
    if (print) io.out(JSON.stringify(result.config, null, 2));
    return EXIT.ok;
  },
};
