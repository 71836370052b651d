import path from "node:path";
import { redact } from "../../shared/redact.js";
import { fixPlan } from "../gates.js";
import { changedPaths, commitPaths, diffNames, git } from "../git.js";
import { isRunArtefact } from "../hash.js";
import { type FinishVerdict, runPhaseLoop } from "../loop.js";
import { isInside } from "../paths.js";
import { fixPrompt, type PromptTemplates, systemPrompt } from "../prompts.js";
import type { RunState } from "../run-state.js";
import { fixFinishInput, toolsForPhase } from "../tools/index.js";
import type { FixSummary, GateResult, Reproduction } from "../types.js";
import { checkGate, formatRuns } from "./gate.js";
import { endedByError, loopSettings, type PhaseRun, runPhase, toolContext } from "./phase.js";

/**
 * Phase 2: the model changes the source until the frozen reproduction passes the fix gate
 * (unchanged hash, N passes in a row); the harness then commits the changed source files on
 * the base (or on the repro commit when `include_test_in_pr`) as `refs/heads/<branch>`.
 */

interface Fixed {
  fix: FixSummary;
  /** The fix commit (null when committing failed). */
  commitSha: string | null;
  changedFiles: string[];
}

/** Records the fix, its commit and changed files in the state. */
export async function fix(
  run: RunState,
  input: { prompts: PromptTemplates; preexisting: ReadonlySet<string>; reproduction: Reproduction },
): Promise<void> {
  const { value } = await runPhase(run, "fix", run.config.budgets.fix_minutes, (signal, deadline) =>
    fixLoop(run, input, signal, deadline),
  );
  if (!value) return;
  run.fix = value.fix;
  run.commits.fix = value.commitSha;
  run.commits.changedFiles = value.changedFiles;
}

async function fixLoop(
  run: RunState,
  input: { prompts: PromptTemplates; preexisting: ReadonlySet<string>; reproduction: Reproduction },
  signal: AbortSignal,
  deadline: number,
): Promise<PhaseRun<Fixed>> {
  const { exec, workspace, config } = run;
  const o = run.options;
  const repro = input.reproduction;
  const reproAbs = path.join(workspace, repro.path);
  const head = run.commits.repro ?? o.baseSha;
  const gates: GateResult[] = [];
  const plan = fixPlan(o.request.deterministic, config.stability);

  const onFinish = async (
    raw: unknown,
    sig: AbortSignal,
  ): Promise<FinishVerdict<{ summary: FixSummary; files: string[] }>> => {
    const f = fixFinishInput.parse(raw);
    const g = await checkGate(run, plan, repro.command, sig, { frozen: repro.hash, abs: reproAbs });
    gates.push(g.result);
    if (g.cancelled) return { kind: "stop", code: "cancelled", reason: "stopped during the gate runs" };
    if (!g.result.passed) {
      return {
        kind: "retry",
        message: `The fix gate failed: ${g.result.reason}.\n${formatRuns(g.result.runs)}`,
      };
    }
    const files = (await changedPaths(exec, head)).filter(
      (p) => !input.preexisting.has(p) && !isInside(reproAbs, path.join(workspace, p)) && !isRunArtefact(p),
    );
    if (files.length === 0) {
      return {
        kind: "stop",
        code: "no_changes",
        reason: `the reproduction passed ${g.result.runs.length} runs without any source change; the failure may depend on the environment`,
      };
    }
    return {
      kind: "accept",
      note: g.result.reason,
      value: {
        summary: {
          summary: f.summary,
          rootCause: f.root_cause,
          changes: f.changes,
          performance: f.performance,
        },
        files,
      },
    };
  };

  const end = await runPhaseLoop({
    client: o.client,
    model: run.model,
    phase: "fix",
    system: systemPrompt(input.prompts),
    userPrompt: fixPrompt(input.prompts, {
      request: o.request,
      failureContext: o.failureContext,
      testPath: repro.path,
      command: repro.command,
      failureMode: repro.failureMode,
      config,
    }),
    tools: toolsForPhase("fix"),
    toolContext: toolContext(run, [repro.path]),
    ...loopSettings(run, signal, deadline),
    onFinish,
  });
  const ended = { code: end.code, reason: end.reason, usage: end.usage, turns: end.turns, gates };
  const accepted = end.accepted;
  if (!accepted) return { ...ended, value: null };
  // The branch is ready for the PR part: the fix on the base, with the test only when the
  // repository wants it in the PR.
  const parent = config.include_test_in_pr && run.commits.repro !== null ? run.commits.repro : o.baseSha;
  const message = redact(
    `autofix: ${firstLine(accepted.summary.summary)}\n\nRoot cause: ${accepted.summary.rootCause}`,
  );
  let commitSha: string | null = null;
  try {
    commitSha = await commitPaths(exec, parent, accepted.files, message);
    await git(exec, ["update-ref", `refs/heads/${o.branch}`, commitSha]);
    const changedFiles = (await diffNames(exec, o.baseSha, commitSha)).filter(
      (p) => !isInside(reproAbs, path.join(workspace, p)),
    );
    return { ...ended, value: { fix: accepted.summary, commitSha, changedFiles } };
  } catch (err) {
    // Ends the phase like any error, but the accepted fix (and a commit made) stay in the result.
    return {
      ...endedByError(run, signal, err),
      value: { fix: accepted.summary, commitSha, changedFiles: [] },
    };
  }
}

function firstLine(s: string): string {
  const l = s.trim().split("\n")[0] ?? "";
  return l.length > 72 ? `${l.slice(0, 69)}...` : l;
}
