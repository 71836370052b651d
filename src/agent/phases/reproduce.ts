import { access, constants, lstat, rm } from "node:fs/promises";
import path from "node:path";
import { redact } from "../../shared/redact.js";
import { reproducePlan } from "../gates.js";
import { changedPaths, commitPaths, git } from "../git.js";
import { isRunArtefact, testObjectHash } from "../hash.js";
import { type FinishVerdict, runPhaseLoop } from "../loop.js";
import { deriveReproCommand, slugOfBranch } from "../outcome.js";
import { confinePath, isInside } from "../paths.js";
import { type PromptTemplates, reproducePrompt, systemPrompt } from "../prompts.js";
import type { RunState } from "../run-state.js";
import { reproduceFinishInput, toolsForPhase } from "../tools/index.js";
import { emptyUsage, type GateResult, type Reproduction } from "../types.js";
import { checkGate, formatRuns } from "./gate.js";
import { endedByError, loopSettings, type PhaseRun, runPhase, toolContext } from "./phase.js";

/**
 * Phase 1: a test that fails on the base commit. Either the request names an existing test
 * (no model turns: its command is derived and gated), or the model writes a test folder and
 * the harness gates its command on the unchanged code, then commits the folder alone on top of
 * the base and moves HEAD there for the fix phase.
 */

interface Reproduced {
  reproduction: Reproduction;
  /** The repro commit (null for an existing test, or when committing failed). */
  commitSha: string | null;
}

/** Records the reproduction in the state; returns it when the phase passed (the fix may start). */
export async function reproduce(
  run: RunState,
  input: { prompts: PromptTemplates; preexisting: ReadonlySet<string> },
): Promise<Reproduction | null> {
  const { request } = run.options;
  const { outcome, value } = await runPhase(
    run,
    "reproduce",
    run.config.budgets.reproduce_minutes,
    (signal, deadline) =>
      request.existingTestPath
        ? existingTest(run, request.existingTestPath, signal)
        : writtenTest(run, input, signal, deadline),
  );
  run.reproduction = value?.reproduction ?? null;
  run.commits.repro = value?.commitSha ?? null;
  return outcome.status === "passed" ? run.reproduction : null;
}

/** The request's own test: derive its command and gate it. */
async function existingTest(
  run: RunState,
  testPath: string,
  signal: AbortSignal,
): Promise<PhaseRun<Reproduced>> {
  const gates: GateResult[] = [];
  const plan = reproducePlan(run.options.request.deterministic, run.config.stability);
  const { abs, rel } = await confinePath(run.workspace, testPath);
  const st = await lstat(abs).catch(() => null);
  const empty = { usage: emptyUsage(), turns: 0, gates, value: null };
  if (!st) return { code: "invalid_test", reason: `the existing test ${rel} does not exist`, ...empty };
  const command = run.options.reproCommand ?? deriveReproCommand(rel, st.isDirectory());
  if (!command) {
    return {
      code: "invalid_test",
      reason: `cannot tell how to run ${rel}; give the command explicitly (reproCommand)`,
      ...empty,
    };
  }
  // The gate runs the base commit: the test must be in it (not untracked, not ignored).
  const hash = await testObjectHash((args, opts) => git(run.exec, args, opts), run.options.baseSha, rel);
  if (!hash) {
    return {
      code: "invalid_test",
      reason: `the existing test ${rel} is not in the base commit (untracked or ignored); the gate runs a clean checkout of the commit`,
      ...empty,
    };
  }
  const g = await checkGate(run, plan, command, signal, { commit: run.options.baseSha });
  gates.push(g.result);
  if (g.cancelled) return { code: "cancelled", reason: "stopped during the gate runs", ...empty };
  return {
    code: g.result.passed ? "gate_passed" : "gate_failed",
    reason: `existing test ${rel}: ${g.result.reason}`,
    ...empty,
    // Kept even when the gate failed: the result shows which test was tried.
    value: {
      reproduction: { path: rel, command, hash, failureMode: "existing test", existing: true },
      commitSha: null,
    },
  };
}

/** The model writes the test folder; its finish is accepted once the gate fails on the base. */
async function writtenTest(
  run: RunState,
  input: { prompts: PromptTemplates; preexisting: ReadonlySet<string> },
  signal: AbortSignal,
  deadline: number,
): Promise<PhaseRun<Reproduced>> {
  const { exec, workspace, config } = run;
  const o = run.options;
  const gates: GateResult[] = [];
  const plan = reproducePlan(o.request.deterministic, config.stability);
  const slug = slugOfBranch(o.branch);

  const onFinish = async (raw: unknown, sig: AbortSignal): Promise<FinishVerdict<Reproduced>> => {
    const f = reproduceFinishInput.parse(raw);
    let dir: { abs: string; rel: string };
    try {
      dir = await confinePath(workspace, f.test_dir);
    } catch (err) {
      return { kind: "retry", message: (err as Error).message };
    }
    const problems = await checkTestFolder(dir.abs);
    if (problems.length > 0) {
      return { kind: "retry", message: `the test folder ${dir.rel} is not complete: ${problems.join("; ")}` };
    }
    if (dir.rel === ".") {
      return {
        kind: "retry",
        message: "the test folder must be a dedicated folder, not the repository root",
      };
    }
    // The test must fail on the unchanged code: put back anything changed outside its folder.
    const reverted = await revertOutside(run, dir.rel, input.preexisting);
    // The gate proves the commit, not the workspace: the test folder alone on the base,
    // checked out fresh (no ignored helper, no stale bytecode, no index flags come along).
    const files = await testFiles(run, dir.rel);
    if (files.length === 0) {
      return {
        kind: "retry",
        message: `nothing in ${dir.rel} can be committed (are its files ignored?); the gate runs a clean checkout of the commit`,
      };
    }
    const commitSha = await commitPaths(
      exec,
      o.baseSha,
      files,
      redact(`autofix: reproduction test for ${slug}\n\n${f.failure_mode}\n\nRun: ${f.command}`),
    );
    const hash = await testObjectHash((args, opts) => git(exec, args, opts), commitSha, dir.rel);
    if (!hash) return { kind: "retry", message: `the commit of ${dir.rel} holds no test folder` };
    const g = await checkGate(run, plan, f.command, sig, { commit: commitSha, from: o.baseSha });
    gates.push(g.result);
    if (g.cancelled) return { kind: "stop", code: "cancelled", reason: "stopped during the gate runs" };
    const revertNote = reverted.length
      ? ` (changes outside the test folder were put back: ${reverted.join(", ")})`
      : "";
    if (!g.result.passed) {
      return {
        kind: "retry",
        message: `The reproduction gate failed in a clean checkout of the test's commit ${commitSha.slice(0, 12)} (only committed files count: ignored and untracked files are not there): ${g.result.reason}.${revertNote}\n${formatRuns(g.result.runs)}`,
      };
    }
    return {
      kind: "accept",
      note: `${g.result.reason}${revertNote}`,
      value: {
        reproduction: {
          path: dir.rel,
          command: f.command,
          hash,
          failureMode: f.failure_mode,
          existing: false,
        },
        commitSha,
      },
    };
  };

  const end = await runPhaseLoop({
    client: o.client,
    model: run.model,
    phase: "reproduce",
    system: systemPrompt(input.prompts),
    userPrompt: reproducePrompt(input.prompts, {
      request: o.request,
      failureContext: o.failureContext,
      testDir: o.testDir ?? `autofix-tests/${slug}`,
      config,
    }),
    tools: toolsForPhase("reproduce"),
    toolContext: toolContext(run, []),
    ...loopSettings(run, signal, deadline),
    onFinish,
  });
  const ended = { code: end.code, reason: end.reason, usage: end.usage, turns: end.turns, gates };
  const accepted = end.accepted;
  if (!accepted) return { ...ended, value: null };
  // The gated commit is the repro commit; HEAD stays there for the fix phase.
  try {
    await git(exec, ["reset", "-q", accepted.commitSha!]);
    await git(exec, ["update-ref", `refs/autofix-repro/${o.branch}`, accepted.commitSha!]);
  } catch (err) {
    // Ends the phase like any error, but the accepted reproduction and its commit stay in the result.
    return { ...endedByError(run, signal, err), value: accepted };
  }
  return { ...ended, value: accepted };
}

/** The conventions of a test folder: tests/, README.md and an executable run_test.sh. */
async function checkTestFolder(abs: string): Promise<string[]> {
  const problems: string[] = [];
  const st = await lstat(abs).catch(() => null);
  if (!st?.isDirectory()) return ["it is not a folder"];
  const tests = await lstat(path.join(abs, "tests")).catch(() => null);
  if (!tests?.isDirectory()) problems.push("tests/ is missing");
  if (!(await lstat(path.join(abs, "README.md")).catch(() => null))?.isFile())
    problems.push("README.md is missing");
  const script = path.join(abs, "run_test.sh");
  if (!(await lstat(script).catch(() => null))?.isFile()) problems.push("run_test.sh is missing");
  else if (
    !(await access(script, constants.X_OK).then(
      () => true,
      () => false,
    ))
  ) {
    problems.push("run_test.sh is not executable (write it with executable: true)");
  }
  return problems;
}

/** Files of the test folder to commit: everything except run artefacts. */
async function testFiles(run: RunState, rel: string): Promise<string[]> {
  const { exec, workspace } = run;
  const all = await changedPaths(exec, "HEAD");
  const root = path.join(workspace, rel);
  return all.filter(
    (p) =>
      isInside(root, path.join(workspace, p)) &&
      !isRunArtefact(path.relative(rel, p).split(path.sep).join("/")),
  );
}

/** Put back every change made outside the test folder since the base (files present before stay). */
async function revertOutside(
  run: RunState,
  testRel: string,
  preexisting: ReadonlySet<string>,
): Promise<string[]> {
  const { exec, workspace } = run;
  const base = run.options.baseSha;
  const root = path.join(workspace, testRel);
  const changed = (await changedPaths(exec, base)).filter(
    (p) => !preexisting.has(p) && !isInside(root, path.join(workspace, p)),
  );
  for (const p of changed) {
    const inBase = await git(exec, ["cat-file", "-e", `${base}:${p}`], { allowFailure: true });
    if (inBase.exitCode === 0) await git(exec, ["checkout", "-q", base, "--", `:(literal)${p}`]);
    else {
      const { abs } = await confinePath(workspace, p).catch(() => ({ abs: "" }));
      if (abs) await rm(abs, { force: true });
    }
  }
  return changed;
}
