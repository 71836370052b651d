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
import type { GateCheckout } from "./checkout.js";
import { checkGate, formatRuns } from "./gate.js";
import {
  type FixDiff,
  hasPytestSection,
  parseNameStatus,
  parsePatch,
  weakeningReason,
  weakenings,
} from "./neighbourhood.js";
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
  /** The commit the fix gate ran (the fix commit, or the fix on top of the repro commit). */
  gatedSha: string | null;
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
  run.commits.gated = value.gatedSha;
  run.commits.changedFiles = value.changedFiles;
}

interface Accepted {
  summary: FixSummary;
  /** The commit on the branch. */
  commitSha: string;
  /** The commit the gate ran. */
  gatedSha: string;
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
  const inTest = (p: string) => isInside(reproAbs, path.join(workspace, p));

  const onFinish = async (raw: unknown, sig: AbortSignal): Promise<FinishVerdict<Accepted>> => {
    const f = fixFinishInput.parse(raw);
    const message = redact(`autofix: ${firstLine(f.summary)}\n\nRoot cause: ${f.root_cause}`);
    // What the model changed, test folder included: the gated commit holds all of it, so a
    // change to the frozen test shows as a different tree and is refused before any run.
    const changed = (await changedPaths(exec, head)).filter(
      (p) => !input.preexisting.has(p) && !isRunArtefact(p),
    );
    const files = changed.filter((p) => !inTest(p));
    const gatedSha = await commitPaths(exec, head, changed, message);
    const g = await checkGate(run, plan, repro.command, sig, {
      commit: gatedSha,
      from: head,
      hash: { frozen: repro.hash, path: repro.path },
      // Unless the person asked for it, a fix may not weaken the tests around it.
      precheck: async (checkout) => {
        if (o.request.allowTestChanges) return null;
        const found = weakenings(await readFixDiff(checkout, head, gatedSha));
        return found.length > 0 ? weakeningReason(found) : null;
      },
    });
    gates.push(g.result);
    if (g.cancelled) return { kind: "stop", code: "cancelled", reason: "stopped during the gate runs" };
    if (!g.result.passed) {
      return {
        kind: "retry",
        message: `The fix gate failed in a clean checkout of the committed change ${gatedSha.slice(0, 12)} (only committed files count: ignored and untracked files are not there): ${g.result.reason}.\n${formatRuns(g.result.runs)}`,
      };
    }
    if (files.length === 0) {
      return {
        kind: "stop",
        code: "no_changes",
        reason: `the reproduction passed ${g.result.runs.length} runs without any source change; the failure may depend on the environment`,
      };
    }
    // The branch: the gated commit itself when the test goes into the PR (or is the
    // repository's own), else the same source change on the base, checked to be the gated
    // tree minus the frozen test folder.
    const onRepro = run.commits.repro !== null;
    let commitSha = gatedSha;
    if (onRepro && !config.include_test_in_pr) {
      commitSha = await commitPaths(exec, o.baseSha, files, message);
      const extra = (await diffNames(exec, commitSha, gatedSha)).filter((p) => !inTest(p));
      if (extra.length > 0) {
        return {
          kind: "stop",
          code: "error",
          reason: `the fix commit differs from the gated commit outside the test folder (${extra.slice(0, 5).join(", ")})`,
        };
      }
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
        commitSha,
        gatedSha,
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
  const { commitSha, gatedSha } = accepted;
  try {
    await git(exec, ["update-ref", `refs/heads/${o.branch}`, commitSha]);
    const changedFiles = (await diffNames(exec, o.baseSha, commitSha)).filter((p) => !inTest(p));
    return { ...ended, value: { fix: accepted.summary, commitSha, gatedSha, changedFiles } };
  } catch (err) {
    // Ends the phase like any error, but the accepted fix (and its commit) stay in the result.
    return {
      ...endedByError(run, signal, err),
      value: { fix: accepted.summary, commitSha, gatedSha, changedFiles: [] },
    };
  }
}

/** The fix's diff as the neighbourhood check reads it, from the trusted gate checkout. */
async function readFixDiff(checkout: GateCheckout, from: string, to: string): Promise<FixDiff> {
  const ns = await checkout.git(["diff", "--name-status", "-z", "-M", "--no-ext-diff", from, to, "--"]);
  const patch = await checkout.git([
    "diff",
    "-U0",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--text",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    from,
    to,
    "--",
  ]);
  const entries = parseNameStatus(ns.stdout);
  const texts: NonNullable<FixDiff["texts"]> = {};
  const show = async (rev: string, p: string) => {
    const r = await checkout.git(["cat-file", "blob", `${rev}:${p}`], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout : null;
  };
  for (const e of entries) {
    if (!hasPytestSection(e.path) && !(e.from && hasPytestSection(e.from))) continue;
    texts[e.path] = { old: await show(from, e.from ?? e.path), new: await show(to, e.path) };
  }
  return { entries, ...parsePatch(patch.stdout), texts };
}

function firstLine(s: string): string {
  const l = s.trim().split("\n")[0] ?? "";
  return l.length > 72 ? `${l.slice(0, 69)}...` : l;
}
