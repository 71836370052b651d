import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { lastLines } from "../../agent/output.js";
import { hostGit } from "../../agent/phases/checkout.js";
import { readSettings } from "../../config/env.js";
import { createJobRepo } from "../../git/job-repo.js";
import type { CommandResult, JobExecutor } from "../../sandbox/executor.js";
import { createSandbox, type Sandbox, sandboxSettingsOf } from "../../sandbox/factory.js";
import { describeBackend, type SandboxMode } from "../../sandbox/select.js";
import { redact, registerEnvSecrets } from "../../shared/redact.js";
import { shellQuote } from "../../shared/shell.js";
import { type CliCommand, type CliIO, type CommandSpec, EXIT, parseCommand, usageError } from "../command.js";
import { findRepository } from "./local-repo.js";

/**
 * `autofix prove <fix-branch>`: a reviewer re-runs the proof of a fix branch on their own
 * machine, in the sandbox. The frozen test is the one `autofix run` (or a worker) kept in
 * `refs/autofix-repro/<branch>`: a commit holding only the test folder on top of the base (or,
 * when the fix branch carries the test, that same commit in the branch's history). Two clean
 * checkouts are made the way `autofix run` makes its own (src/git/job-repo.ts, the person's
 * objects borrowed read-only): the reproduction commit (the base plus the test) and the fix
 * with the frozen test put in place of whatever the branch has at that path. The test must
 * fail on the first and pass on the second. Exit 0 when both hold, 1 when not, 2 for bad input.
 */

const SANDBOX_MODES: readonly SandboxMode[] = ["auto", "bwrap", "container", "none"];
const REPRO_SUBJECT = "autofix: reproduction test for ";

export const PROVE: CommandSpec = {
  usage: "autofix prove [--repo PATH] [--runs N] [--timeout MINUTES] [--sandbox MODE] <fix-branch>",
  summary:
    "re-run the proof of a fix branch in the sandbox: its frozen test (refs/autofix-repro/<branch>) must fail on the base and pass on the fix (exit 0 proven, 1 not, 2 bad input)",
  positionals: [1, 1],
  missing: "name the fix branch (e.g. autofix/add-sh-returns-the-wrong-sum)",
  options: {
    repo: {
      type: "string",
      value: "PATH",
      help: "the repository holding the branch (default: the current folder)",
    },
    runs: { type: "string", value: "N", help: "runs on each side; every one must agree (default 1)" },
    timeout: { type: "string", value: "MINUTES", help: "limit of one run of the test (default 30)" },
    sandbox: {
      type: "string",
      value: "MODE",
      help: "where the test runs: auto, bwrap, container or none (default AUTOFIX_SANDBOX, else auto)",
    },
  },
  notes: [
    "The test comes from refs/autofix-repro/<branch> (what `autofix run` leaves), else from the reproduction commit in the branch's history when the branch carries the test.",
    "Nothing in the working tree is touched: both checkouts are temporary repositories, removed afterwards.",
  ],
};

export interface ProveDeps {
  sandbox: typeof createSandbox;
  /** Parent folder of the temporary checkouts. */
  tmpDir: () => string;
}

export const defaultProveDeps: ProveDeps = { sandbox: createSandbox, tmpDir: () => tmpdir() };

/** What the proof runs: found in the repository before anything is checked out. */
export interface ProofPlan {
  repo: string;
  branch: string;
  fixSha: string;
  reproSha: string;
  /** Where the test was found: the repro ref, or the branch's history. */
  reproSource: string;
  baseSha: string;
  testDir: string;
  testTree: string;
  command: string;
  /** The fix branch has the frozen test at testDir already. */
  fixCarriesTest: boolean;
}

const git = (cwd: string, args: string[]) => hostGit(cwd, args, { allowFailure: true });
const ok = async (cwd: string, args: string[]): Promise<string | null> => {
  const r = await git(cwd, args);
  return r.exitCode === 0 ? r.stdout.trim() : null;
};

/** The longest folder every path is under ("" when none). Pure. */
export function commonFolder(paths: readonly string[]): string {
  if (paths.length === 0) return "";
  let parts = paths[0]!.split("/").slice(0, -1);
  for (const p of paths.slice(1)) {
    const q = p.split("/").slice(0, -1);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join("/");
}

/** The test's command from the reproduction commit's message (`Run: ...`), else its run_test.sh. Pure. */
export function commandOf(message: string, testDir: string): string {
  const run = [...message.matchAll(/^Run: (.+)$/gm)].at(-1)?.[1]?.trim();
  return run || `bash ${shellQuote(`${testDir}/run_test.sh`)}`;
}

/** Find the fix, its frozen test and its base; a problem for the person (bad input) when they are not there. */
export async function planProof(repo: string, branchArg: string): Promise<ProofPlan | { problem: string }> {
  const branch = branchArg.replace(/^refs\/heads\//, "");
  const fixSha =
    (await ok(repo, ["rev-parse", "--quiet", "--verify", `refs/heads/${branch}^{commit}`])) ??
    (await ok(repo, ["rev-parse", "--quiet", "--verify", `${branchArg}^{commit}`]));
  if (!fixSha) return { problem: `no branch or commit ${branchArg} in ${repo}` };

  let reproSha = await ok(repo, [
    "rev-parse",
    "--quiet",
    "--verify",
    `refs/autofix-repro/${branch}^{commit}`,
  ]);
  let reproSource = `refs/autofix-repro/${branch}`;
  if (!reproSha) {
    // The branch may carry the test: its reproduction commit is then in its first-parent history.
    const log = await ok(repo, ["log", "--first-parent", "-n", "200", "--format=%H %s", fixSha]);
    const hit = (log ?? "").split("\n").find((l) => l.slice(41).startsWith(REPRO_SUBJECT));
    if (hit) {
      reproSha = hit.slice(0, 40);
      reproSource = `the reproduction commit in ${branch}'s history`;
    }
  }
  if (!reproSha)
    return {
      problem: `no frozen test for ${branch}: refs/autofix-repro/${branch} does not exist and no reproduction commit ("${REPRO_SUBJECT}...") is in the branch's history (fetch it with: git fetch origin 'refs/autofix-repro/*:refs/autofix-repro/*')`,
    };
  const baseSha = await ok(repo, ["rev-parse", "--quiet", "--verify", `${reproSha}^1^{commit}`]);
  if (!baseSha)
    return {
      problem: `the reproduction commit ${reproSha.slice(0, 12)} has no parent (no base to prove against)`,
    };
  if ((await git(repo, ["merge-base", "--is-ancestor", baseSha, fixSha])).exitCode !== 0)
    return {
      problem: `${branch} does not build on ${baseSha.slice(0, 12)}, the base its reproduction test was written for`,
    };
  const changed = (await ok(repo, ["diff", "--name-only", "--no-renames", "-z", baseSha, reproSha])) ?? "";
  const testDir = commonFolder(changed.split("\0").filter(Boolean));
  if (!testDir)
    return {
      problem: `the reproduction commit ${reproSha.slice(0, 12)} holds no test folder (it changes no folder of its own)`,
    };
  const testTree = await ok(repo, ["rev-parse", "--verify", `${reproSha}:${testDir}`]);
  if (!testTree) return { problem: `the reproduction commit ${reproSha.slice(0, 12)} has no ${testDir}` };
  const message = (await ok(repo, ["log", "-1", "--format=%B", reproSha])) ?? "";
  const fixTree = await ok(repo, ["rev-parse", "--quiet", "--verify", `${fixSha}:${testDir}`]);
  return {
    repo,
    branch,
    fixSha,
    reproSha,
    reproSource,
    baseSha,
    testDir,
    testTree,
    command: commandOf(message, testDir),
    fixCarriesTest: fixTree === testTree,
  };
}

interface SideResult {
  runs: CommandResult[];
  /** Every run ended as the side needs (failed on the base, passed on the fix). */
  asNeeded: boolean;
}

const passed = (r: CommandResult) => r.exitCode === 0 && !r.timedOut;

function describeRun(r: CommandResult): string {
  if (r.timedOut) return "timed out";
  if (r.exitCode === 0) return "passed (exit 0)";
  return `failed (${r.exitCode === null ? `signal ${r.signal ?? "?"}` : `exit ${r.exitCode}`})`;
}

export function createProveCommand(overrides: Partial<ProveDeps> = {}): CliCommand {
  const deps: ProveDeps = { ...defaultProveDeps, ...overrides };
  return {
    name: ["prove"],
    usage: PROVE.usage,
    summary: PROVE.summary,
    async run(args, io) {
      const parsed = parseCommand(PROVE, args, io);
      if (typeof parsed === "number") return parsed;
      const v = parsed.values as Record<string, string | undefined>;
      const runs = v.runs === undefined ? 1 : Number(v.runs);
      if (!Number.isInteger(runs) || runs < 1 || runs > 100)
        return usageError(
          PROVE,
          io,
          `--runs must be a whole number from 1 to 100; got ${JSON.stringify(v.runs)}`,
        );
      const minutes = v.timeout === undefined ? 30 : Number(v.timeout);
      if (!Number.isFinite(minutes) || minutes <= 0)
        return usageError(
          PROVE,
          io,
          `--timeout must be a positive number of minutes; got ${JSON.stringify(v.timeout)}`,
        );
      const envSandbox = io.env.AUTOFIX_SANDBOX?.trim() || undefined;
      const mode = (v.sandbox ?? envSandbox ?? "auto") as SandboxMode;
      if (!SANDBOX_MODES.includes(mode))
        return usageError(
          PROVE,
          io,
          `${v.sandbox !== undefined ? "--sandbox" : "AUTOFIX_SANDBOX"} must be one of ${SANDBOX_MODES.join(", ")}; got ${JSON.stringify(mode)}`,
        );
      registerEnvSecrets(io.env);

      const repoArg = resolve(io.cwd, v.repo ?? ".");
      if (!(await stat(repoArg).catch(() => null))) return refuse(io, `--repo ${repoArg} does not exist`);
      const found = await findRepository(repoArg, "HEAD");
      if (found.root === null)
        return refuse(
          io,
          `${repoArg} is not a git repository (${found.whyNot}); run in a checkout or pass --repo PATH`,
        );
      const plan = await planProof(found.root, parsed.positionals[0]!);
      if ("problem" in plan) return refuse(io, plan.problem);

      const sandboxConfig = sandboxSettingsOf(
        { ...readSettings(io.env, "cli").settings, AUTOFIX_SANDBOX: mode },
        { name: "--sandbox", none: "--sandbox none" },
      );
      if (sandboxConfig.problems.length > 0) return refuse(io, sandboxConfig.problems.join("; "));
      const made = await deps.sandbox(sandboxConfig.settings);
      if (!made.ok) return refuse(io, made.problem);
      const sandbox = made.sandbox;
      if (sandbox.warning) io.err(`WARNING: ${sandbox.warning}`);

      const say = (l: string) => io.out(redact(l));
      say(`autofix prove: ${plan.branch} at ${plan.fixSha.slice(0, 12)}`);
      say(`  frozen test: ${plan.testDir} (tree ${plan.testTree.slice(0, 12)}) from ${plan.reproSource}`);
      say(`  command:     ${plan.command}`);
      say(
        `  base:        ${plan.baseSha.slice(0, 12)} (the reproduction commit ${plan.reproSha.slice(0, 12)}: the base plus the test)`,
      );
      say(
        `  fix:         ${plan.fixSha.slice(0, 12)}${plan.fixCarriesTest ? " (carries the frozen test)" : " with the frozen test put in place"}`,
      );
      say(`  sandbox:     ${describeBackend(sandbox.kind)}`);
      say(`  runs:        ${runs} on each side, at most ${minutes} min each`);

      const work = await mkdtemp(join(deps.tmpDir(), "autofix-prove-"));
      // A sandbox running as another uid must be able to pass through (not list) the folder.
      await chmod(work, 0o711);
      try {
        const common = await ok(plan.repo, ["rev-parse", "--path-format=absolute", "--git-common-dir"]);
        if (!common) return refuse(io, `cannot find the git folder of ${plan.repo}`);
        const objects = join(common, "objects");
        const side = async (name: "base" | "fix", needPass: boolean): Promise<SideResult> => {
          const dir = join(work, name);
          await createJobRepo({
            dir,
            objectStores: [objects],
            sha: name === "base" ? plan.reproSha : plan.fixSha,
            git: { helperPath: join(work, "bin", "none") },
          });
          if (name === "fix" && !plan.fixCarriesTest) {
            // The frozen test in place of whatever the branch has there (nothing, or a copy).
            await hostGit(dir, ["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", plan.testDir]);
            await rm(join(dir, plan.testDir), { recursive: true, force: true });
            await hostGit(dir, ["read-tree", `--prefix=${plan.testDir}/`, "-u", plan.testTree]);
          }
          return runSide(sandbox, dir, objects, name, plan.command, runs, minutes, needPass, say);
        };
        const base = await side("base", false);
        const fix = await side("fix", true);
        say("");
        if (base.asNeeded && fix.asNeeded) {
          say(
            `Proven: the frozen test fails on the base ${plan.baseSha.slice(0, 12)} and passes on ${plan.branch}.`,
          );
          return EXIT.ok;
        }
        const why: string[] = [];
        if (!base.asNeeded) why.push("the test passed on the base: it does not reproduce the failure there");
        if (!fix.asNeeded) why.push(`the test does not pass on ${plan.branch}: the fix does not fix it`);
        say(`Not proven: ${why.join("; ")}.`);
        return EXIT.failed;
      } catch (err) {
        io.err(redact(`autofix prove failed: ${(err as Error).message}`));
        return EXIT.failed;
      } finally {
        await rm(work, { recursive: true, force: true }).catch(() => {});
      }
    },
  };
}

async function runSide(
  sandbox: Sandbox,
  dir: string,
  objects: string,
  name: "base" | "fix",
  command: string,
  runs: number,
  minutes: number,
  needPass: boolean,
  say: (l: string) => void,
): Promise<SideResult> {
  let exec: JobExecutor | null = null;
  const results: CommandResult[] = [];
  try {
    exec = await sandbox.factory({
      workspace: dir,
      env: {},
      cards: [],
      jobId: `prove-${name}`,
      readOnlyPaths: [objects],
    });
    for (let i = 1; i <= runs; i++) {
      const r = await exec.run(command, { timeoutMs: minutes * 60_000, headBytes: 4_000, tailBytes: 12_000 });
      results.push(r);
      const good = passed(r) === needPass;
      say(
        `${name === "base" ? "base + test" : "fix + test "}: run ${i}/${runs} ${describeRun(r)}${good ? ", as it must" : needPass ? ": it must pass" : ": it must fail"}`,
      );
      if (!good) {
        const tail = lastLines(r.output, 20).trimEnd();
        if (tail) for (const l of tail.split("\n")) say(`    | ${l}`);
        break;
      }
    }
  } finally {
    await exec?.dispose().catch(() => {});
  }
  return { runs: results, asNeeded: results.length === runs && results.every((r) => passed(r) === needPass) };
}

function refuse(io: CliIO, problem: string): number {
  io.err(redact(`autofix prove: ${problem}`));
  io.err(`usage: ${PROVE.usage}`);
  return EXIT.badInput;
}

export const proveLocalCommand = createProveCommand();
