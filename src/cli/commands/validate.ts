import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadInfoJson } from "../../contracts/info-json.js";
import { type CliCommand, EXIT } from "../command.js";

export const validateCommand: CliCommand = {
  name: ["validate"],
  usage: "autofix validate <info.json> [--repo PATH]",
  summary: "check an info.json against the original framework's rules (exit 0 valid, 2 invalid)",
  async run(args, io) {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: { repo: { type: "string" } },
    });
    const file = positionals[0];
    if (!file || positionals.length > 1) {
      io.err(`usage: ${this.usage}`);
      return EXIT.badInput;
    }
    const repoRoot = values.repo ? resolve(io.cwd, values.repo) : io.cwd;
    const result = loadInfoJson(resolve(io.cwd, file), { repoRoot });
    for (const note of result.notes) io.out(`note: ${note}`);
    if (!result.ok) {
      io.err(
        `${file} is invalid (${result.problems.length} problem${result.problems.length > 1 ? "s" : ""}):`,
      );
      for (const p of result.problems) io.err(`  - ${p}`);
      return EXIT.badInput;
    }
    const r = result.request;
    io.out(`${file} is valid`);
    io.out(
      `  failure:   ${r.deterministic ? "deterministic (minimal test, 2/2 gates)" : "non-deterministic (stress test, 5/5 gates)"}`,
    );
    io.out(`  logs from: ${r.url ?? "raw-logs"}`);
    io.out(`  test:      ${r.existingTestPath ?? "written in phase 1"}`);
    return EXIT.ok;
  },
};
