import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { loadInfoJson } from "../../contracts/info-json.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand } from "../command.js";
import { findRepository, isInCommit } from "../run/local-repo.js";

const SPEC: CommandSpec = {
  usage: "autofix validate <info.json> [--repo PATH] [--base REF]",
  summary:
    "check an info.json as `autofix run` would, without a model: the framework's rules, the repository, a committed existing-test-path (exit 0 valid, 2 invalid)",
  options: {
    repo: {
      type: "string",
      value: "PATH",
      help: "the git checkout the info.json is for (default: the current folder)",
    },
    base: {
      type: "string",
      value: "REF",
      help: "the commit `autofix run --base` would start from; an existing-test-path must be in it (default HEAD)",
    },
  },
  positionals: [1, 1],
  missing: "missing the info.json to check",
};

export const validateCommand: CliCommand = {
  name: ["validate"],
  usage: SPEC.usage,
  summary: SPEC.summary,
  async run(args, io) {
    const parsed = parseCommand(SPEC, args, io);
    if (typeof parsed === "number") return parsed;
    const file = parsed.positionals[0]!;
    const repoOpt = parsed.values.repo as string | undefined;
    const baseOpt = parsed.values.base as string | undefined;
    const repoArg = repoOpt !== undefined ? resolve(io.cwd, repoOpt) : io.cwd;
    const problems: string[] = [];
    const notes: string[] = [];

    // The repository, as `autofix run` finds it: a git checkout with a commit at --base.
    let root: string | null = null;
    let baseSha: string | null = null;
    const st = await stat(repoArg).catch(() => null);
    if (!st) problems.push(`--repo ${repoArg} does not exist`);
    else if (!st.isDirectory()) problems.push(`--repo ${repoArg} is not a folder`);
    else {
      const found = await findRepository(repoArg, baseOpt ?? "HEAD");
      root = found.root;
      if (found.root === null) {
        // Without --repo the check is of the file alone; `autofix run` needs a checkout.
        if (repoOpt !== undefined || baseOpt !== undefined)
          problems.push(`${repoArg} is not a git repository (${found.whyNot})`);
        else
          notes.push(
            `${repoArg} is not a git repository: \`autofix run\` needs one (run it in a checkout or pass --repo PATH)`,
          );
      } else if (!found.baseSha) {
        problems.push(
          baseOpt === undefined
            ? `${found.root} has no commit yet: commit the code first (the agent works on a commit)`
            : `--base ${baseOpt} is not a commit in ${found.root}`,
        );
      } else baseSha = found.baseSha;
    }

    const result = loadInfoJson(resolve(io.cwd, file), { repoRoot: root ?? repoArg });
    notes.unshift(...result.notes);
    if (!result.ok) problems.push(...result.problems);
    const testPath = result.ok ? result.request.existingTestPath : undefined;
    if (testPath && root && baseSha && !(await isInCommit(root, baseSha, testPath)))
      problems.push(
        `"existing-test-path" ${testPath} is not in the base commit ${baseSha.slice(0, 10)} (the run uses committed files only: commit it first)`,
      );

    for (const note of notes) io.out(`note: ${note}`);
    if (problems.length > 0 || !result.ok) {
      io.err(`${file} is invalid (${problems.length} problem${problems.length > 1 ? "s" : ""}):`);
      for (const p of problems) io.err(`  - ${p}`);
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
