import { access, constants, lstat, rm } from "node:fs/promises";
import path from "node:path";
import type Anthropic from "@anthropic-ai/sdk";
import { DEFAULT_MODEL } from "../config/env.js";
import type { RepoConfig } from "../config/repo-config.js";
import type { FixRequest } from "../contracts/fix-request.js";
import type { JobExecutor } from "../sandbox/executor.js";
import { redact } from "../shared/redact.js";
import { fixPlan, type GatePlan, reproducePlan, runGate } from "./gates.js";
import { changedPaths, commitPaths, diffNames, git, isGitRepo, revParse } from "./git.js";
import { hashTestPath, isRunArtefact } from "./hash.js";
import { type FinishVerdict, runPhaseLoop } from "./loop.js";
import {
  deriveReproCommand,
  overallReason,
  overallStatus,
  phaseReason,
  phaseStatusFor,
  slugOfBranch,
} from "./outcome.js";
import { lastLines } from "./output.js";
import { confinePath, isInside } from "./paths.js";
import { fixPrompt, loadPrompts, type PromptTemplates, reproducePrompt, systemPrompt } from "./prompts.js";
import { addUsage } from "./spend.js";
import {
  type FixFinish,
  fixFinishInput,
  type ReproduceFinish,
  reproduceFinishInput,
  toolsForPhase,
} from "./tools/index.js";
import {
  type AgentResult,
  type AgentUsage,
  emptyUsage,
  type FixSummary,
  type GateResult,
  type GateRun,
  type PhaseEndCode,
  type PhaseName,
  type PhaseOutcome,
  type ProgressEvent,
  type ProgressListener,
  type Reproduction,
  type TranscriptEntry,
} from "./types.js";

export interface RunFixAgentOptions {
  /** The checkout, at `baseSha`, clean (the executor's workspace). */
  baseSha: string;
  /** Deterministic branch name given by the caller (`autofix/<slug>`). Not pushed here. */
  branch: string;
  request: FixRequest;
  config: RepoConfig;
  /** Already-triaged log excerpt (untrusted; fenced as data in the prompts). */
  failureContext: string;
  client: Anthropic;
  /** Defaults to AUTOFIX_MODEL, then DEFAULT_MODEL. */
  model?: string;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  now?: () => number;
  /** Command for an existing test when it cannot be derived from the path. */
  reproCommand?: string;
  /** Where phase 1 writes its test folder (default `autofix-tests/<slug>`). */
  testDir?: string;
  /** Folder holding `prompts/` (default: the package root). */
  promptsRoot?: string;
  /** Output tokens asked for per turn. */
  maxOutputTokens?: number;
  /** Trim old tool outputs past this context size in tokens. */
  contextTrimTokens?: number;
  /** SIGTERM to SIGKILL delay when killing a command's process tree. */
  killGraceMs?: number;
  /** Refused finishes (failed gates) per phase before giving up. */
  maxFinishAttempts?: number;
  /** Where every command of the run goes: tools, gates, the build and the harness's git. */
  executor: JobExecutor;
}

const MINUTE = 60_000;

interface PhaseRun {
  code: PhaseEndCode;
  reason: string;
  usage: AgentUsage;
  turns: number;
  gates: GateResult[];
}

export class AgentSetupError extends Error {
  override name = "AgentSetupError";
}

/**
 * Run the phases (build, reproduce, fix) in a prepared workspace and return a structured,
 * redacted result. Never throws for job-level problems: they end in a failed result.
 */
export async function runFixAgent(o: RunFixAgentOptions): Promise<AgentResult> {
  const now = o.now ?? Date.now;
  const started = now();
  const model = o.model ?? process.env.AUTOFIX_MODEL ?? DEFAULT_MODEL;
  const jobSignal = o.signal ?? new AbortController().signal;
  const exec = o.executor;
  const run = exec.run;
  const workspace = exec.workspace;
  const config = o.config;
  const b = config.budgets;
  const commandTimeoutMs = b.command_timeout_minutes * MINUTE;
  const transcript: TranscriptEntry[] = [];
  const phases: PhaseOutcome[] = [];
  const gateRuns: GateRun[] = [];
  let total = emptyUsage();
  let reproduction: Reproduction | null = null;
  let fix: FixSummary | null = null;
  let reproCommitSha: string | null = null;
  let fixCommitSha: string | null = null;
  let changedFiles: string[] = [];

  const emit = (e: ProgressEvent) => {
    try {
      o.onProgress?.(e);
    } catch {
      // Progress is best effort.
    }
  };

  const finishResult = (statusOverride?: { status: AgentResult["status"]; reason: string }): AgentResult => {
    const status = statusOverride?.status ?? overallStatus(phases);
    const result: AgentResult = {
      status,
      reason: statusOverride?.reason ?? overallReason(status, phases),
      phases,
      reproduction,
      gateRuns,
      fix,
      git: { branch: o.branch, baseSha: o.baseSha, reproCommitSha, fixCommitSha, changedFiles },
      usage: total,
      model,
      startedAt: new Date(started).toISOString(),
      durationMs: Math.max(0, now() - started),
      transcript,
    };
    // Everything that leaves is redacted, including what the model wrote about itself.
    return redactDeepPlain(result);
  };

  /** Run one phase with its deadline; `body` gets the phase signal. */
  const phase = async (
    name: PhaseName,
    minutes: number,
    body: (signal: AbortSignal, deadline: number) => Promise<PhaseRun>,
  ): Promise<PhaseOutcome> => {
    const t0 = now();
    const deadline = t0 + minutes * MINUTE;
    emit({ type: "phase_started", phase: name, budget: { minutes, turns: b.max_turns } });
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new Error("phase deadline")), Math.max(0, deadline - now()));
    const onJobAbort = () => ctrl.abort(new Error("cancelled"));
    if (jobSignal.aborted) ctrl.abort(new Error("cancelled"));
    else jobSignal.addEventListener("abort", onJobAbort, { once: true });
    let r: PhaseRun;
    try {
      r = await body(ctrl.signal, deadline);
    } catch (err) {
      r = {
        code: jobSignal.aborted ? "cancelled" : ctrl.signal.aborted ? "budget_time" : "error",
        reason: redact(`${(err as Error).name}: ${(err as Error).message}`),
        usage: emptyUsage(),
        turns: 0,
        gates: [],
      };
    } finally {
      clearTimeout(timer);
      jobSignal.removeEventListener("abort", onJobAbort);
    }
    // A phase that stopped for a reason other than its own verdict because the job was cancelled reads as cancelled.
    if (jobSignal.aborted && r.code !== "gate_passed") {
      r = { ...r, code: "cancelled", reason: `the job was cancelled (${r.reason})` };
    }
    const outcome: PhaseOutcome = {
      phase: name,
      status: phaseStatusFor(r.code),
      code: r.code,
      reason: redact(phaseReason(r.code, r.reason, r.gates)),
      startedAt: new Date(t0).toISOString(),
      durationMs: Math.max(0, now() - t0),
      turns: r.turns,
      usage: r.usage,
      gates: r.gates,
    };
    total = addUsage(total, r.usage);
    phases.push(outcome);
    emit({ type: "phase_ended", phase: name, outcome });
    return outcome;
  };

  const gate = async (
    plan: GatePlan,
    command: string,
    signal: AbortSignal,
    hash?: { frozen: string; abs: string },
  ) => {
    const r = await runGate(plan, {
      run: (cmd, opts) =>
        run(cmd, { ...opts, ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}) }),
      command,
      cwd: workspace,
      timeoutMs: commandTimeoutMs,
      signal,
      onRun: (gr) => {
        gateRuns.push(gr);
        emit({ type: "gate_run", phase: plan.gate === "reproduce" ? "reproduce" : "fix", run: gr });
      },
      ...(hash ? { hash: { frozen: hash.frozen, current: () => hashTestPath(hash.abs) } } : {}),
    });
    emit({ type: "gate_result", phase: plan.gate, result: r.result });
    return r;
  };

  // ---- setup checks ----
  let prompts: PromptTemplates;
  try {
    prompts = await loadPrompts(o.promptsRoot);
    if (!(await isGitRepo(exec))) throw new AgentSetupError(`${workspace} is not a git checkout`);
    const head = await revParse(exec, "HEAD");
    const base = await revParse(exec, o.baseSha);
    if (head !== base)
      throw new AgentSetupError(`the workspace is at ${head}, not at the base commit ${o.baseSha}`);
    const dirty = await changedPaths(exec, "HEAD");
    if (dirty.length > 0) {
      throw new AgentSetupError(`the workspace has uncommitted changes (${dirty.slice(0, 5).join(", ")})`);
    }
    const ref = await git(exec, ["check-ref-format", "--branch", o.branch], { allowFailure: true });
    if (ref.exitCode !== 0 || !o.branch)
      throw new AgentSetupError(`"${o.branch}" is not a valid branch name`);
    // Work on a detached HEAD: the caller's branches are never moved.
    await git(exec, ["checkout", "-q", "--detach"]);
  } catch (err) {
    return finishResult({ status: "failed", reason: redact(`setup: ${(err as Error).message}`) });
  }

  // ---- build ----
  if (config.commands.build.trim()) {
    const out = await phase("build", b.build_minutes, async (signal) => {
      const r = await run(config.commands.build, {
        cwd: workspace,
        timeoutMs: b.build_minutes * MINUTE,
        signal,
        ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}),
      });
      transcript.push({
        phase: "build",
        turn: 0,
        role: "tool",
        kind: "tool_result",
        name: "build",
        isError: r.exitCode !== 0,
        content: redact(lastLines(r.output, 60)),
      });
      const empty = { usage: emptyUsage(), turns: 0, gates: [] };
      if (r.cancelled)
        return {
          code: jobSignal.aborted ? "cancelled" : "budget_time",
          reason: "the build was stopped",
          ...empty,
        };
      if (r.timedOut)
        return {
          code: "budget_time",
          reason: `the build ran past its ${b.build_minutes} min budget`,
          ...empty,
        };
      if (r.exitCode !== 0) {
        return {
          code: "command_failed",
          reason: `the build command exited ${r.exitCode ?? r.signal}: ${redact(lastLines(r.output, 5, 600))}`,
          ...empty,
        };
      }
      return { code: "gate_passed", reason: `built in ${(r.durationMs / 1000).toFixed(1)} s`, ...empty };
    });
    if (out.status !== "passed") return finishResult();
  }
  // Anything the build left behind (untracked, not ignored) is not the agent's doing.
  const preexisting = new Set(await changedPaths(exec, o.baseSha));

  // ---- phase 1: reproduce ----
  const slug = slugOfBranch(o.branch);
  const system = systemPrompt(prompts);
  const reproOutcome = await phase("reproduce", b.reproduce_minutes, async (signal, deadline) => {
    const gates: GateResult[] = [];
    const plan = reproducePlan(o.request.deterministic, config.stability);
    if (o.request.existingTestPath) {
      const { abs, rel } = await confinePath(workspace, o.request.existingTestPath);
      const st = await lstat(abs).catch(() => null);
      const empty = { usage: emptyUsage(), turns: 0, gates };
      if (!st) return { code: "invalid_test", reason: `the existing test ${rel} does not exist`, ...empty };
      const command = o.reproCommand ?? deriveReproCommand(rel, st.isDirectory());
      if (!command) {
        return {
          code: "invalid_test",
          reason: `cannot tell how to run ${rel}; give the command explicitly (reproCommand)`,
          ...empty,
        };
      }
      const hash = await hashTestPath(abs);
      const g = await gate(plan, command, signal);
      gates.push(g.result);
      if (g.cancelled) return { code: "cancelled", reason: "stopped during the gate runs", ...empty };
      reproduction = { path: rel, command, hash, failureMode: "existing test", existing: true };
      return {
        code: g.result.passed ? "gate_passed" : "gate_failed",
        reason: `existing test ${rel}: ${g.result.reason}`,
        ...empty,
      };
    }

    const testDirDefault = o.testDir ?? `autofix-tests/${slug}`;
    const onFinish = async (input: unknown, sig: AbortSignal): Promise<FinishVerdict> => {
      const f = reproduceFinishInput.parse(input) as ReproduceFinish;
      let dir: { abs: string; rel: string };
      try {
        dir = await confinePath(workspace, f.test_dir);
      } catch (err) {
        return { kind: "retry", message: (err as Error).message };
      }
      const problems = await checkTestFolder(dir.abs);
      if (problems.length > 0) {
        return {
          kind: "retry",
          message: `the test folder ${dir.rel} is not complete: ${problems.join("; ")}`,
        };
      }
      if (dir.rel === ".") {
        return {
          kind: "retry",
          message: "the test folder must be a dedicated folder, not the repository root",
        };
      }
      // The test must fail on the unchanged code: put back anything changed outside its folder.
      const reverted = await revertOutside(exec, o.baseSha, dir.rel, preexisting);
      const hash = await hashTestPath(dir.abs);
      const g = await gate(plan, f.command, sig);
      gates.push(g.result);
      if (g.cancelled) return { kind: "stop", code: "cancelled", reason: "stopped during the gate runs" };
      const revertNote = reverted.length
        ? ` (changes outside the test folder were put back: ${reverted.join(", ")})`
        : "";
      if (!g.result.passed) {
        return {
          kind: "retry",
          message: `The reproduction gate failed: ${g.result.reason}.${revertNote}\n${formatRuns(g.result.runs)}`,
        };
      }
      reproduction = {
        path: dir.rel,
        command: f.command,
        hash,
        failureMode: f.failure_mode,
        existing: false,
      };
      return { kind: "accept", note: `${g.result.reason}${revertNote}` };
    };

    const end = await runPhaseLoop({
      client: o.client,
      model,
      phase: "reproduce",
      system,
      userPrompt: reproducePrompt(prompts, {
        request: o.request,
        failureContext: o.failureContext,
        testDir: testDirDefault,
        config,
      }),
      tools: toolsForPhase("reproduce"),
      toolContext: toolContext([]),
      ...loopSettings(signal, deadline),
      onFinish,
    });
    if (end.accepted && reproduction) {
      // Commit the test alone on top of the base, and keep HEAD there for the fix phase.
      const repro = reproduction as Reproduction;
      const files = await testFiles(exec, repro.path);
      reproCommitSha = await commitPaths(
        exec,
        o.baseSha,
        files,
        redact(`autofix: reproduction test for ${slug}\n\n${repro.failureMode}\n\nRun: ${repro.command}`),
      );
      await git(exec, ["reset", "-q", reproCommitSha]);
      await git(exec, ["update-ref", `refs/autofix-repro/${o.branch}`, reproCommitSha]);
    }
    return { code: end.code, reason: end.reason, usage: end.usage, turns: end.turns, gates };
  });

  /** What every phase's loop shares: budgets, signals, progress, transcript. */
  function loopSettings(signal: AbortSignal, deadline: number) {
    return {
      limits: { deadline, maxTurns: b.max_turns, maxTokens: b.max_tokens, maxCostUsd: b.max_cost_usd },
      jobUsageBefore: total,
      jobSignal,
      phaseSignal: signal,
      onProgress: (e: ProgressEvent) => emit(e),
      transcript,
      now,
      maxOutputTokens: o.maxOutputTokens ?? 16_000,
      contextTrimTokens: o.contextTrimTokens ?? 100_000,
      maxFinishAttempts: o.maxFinishAttempts ?? 3,
    };
  }

  function toolContext(protectedPaths: string[]) {
    return {
      workspace,
      commandTimeoutMs,
      executor: exec,
      protectedPaths,
      ...(o.killGraceMs !== undefined ? { killGraceMs: o.killGraceMs } : {}),
    };
  }

  if (reproOutcome.status !== "passed" || !reproduction) return finishResult();
  const repro = reproduction as Reproduction;
  const reproAbs = path.join(workspace, repro.path);
  const head = reproCommitSha ?? o.baseSha;

  // ---- phase 2: fix ----
  await phase("fix", b.fix_minutes, async (signal, deadline) => {
    const gates: GateResult[] = [];
    const plan = fixPlan(o.request.deterministic, config.stability);
    let accepted: { summary: FixSummary; files: string[] } | null = null;
    const onFinish = async (input: unknown, sig: AbortSignal): Promise<FinishVerdict> => {
      const f = fixFinishInput.parse(input) as FixFinish;
      const g = await gate(plan, repro.command, sig, { frozen: repro.hash, abs: reproAbs });
      gates.push(g.result);
      if (g.cancelled) return { kind: "stop", code: "cancelled", reason: "stopped during the gate runs" };
      if (!g.result.passed) {
        return {
          kind: "retry",
          message: `The fix gate failed: ${g.result.reason}.\n${formatRuns(g.result.runs)}`,
        };
      }
      const files = (await changedPaths(exec, head)).filter(
        (p) => !preexisting.has(p) && !isInside(reproAbs, path.join(workspace, p)) && !isRunArtefact(p),
      );
      if (files.length === 0) {
        return {
          kind: "stop",
          code: "no_changes",
          reason: `the reproduction passed ${g.result.runs.length} runs without any source change; the failure may depend on the environment`,
        };
      }
      accepted = {
        summary: {
          summary: f.summary,
          rootCause: f.root_cause,
          changes: f.changes,
          performance: f.performance,
        },
        files,
      };
      return { kind: "accept", note: g.result.reason };
    };
    const end = await runPhaseLoop({
      client: o.client,
      model,
      phase: "fix",
      system,
      userPrompt: fixPrompt(prompts, {
        request: o.request,
        failureContext: o.failureContext,
        testPath: repro.path,
        command: repro.command,
        failureMode: repro.failureMode,
        config,
      }),
      tools: toolsForPhase("fix"),
      toolContext: toolContext([repro.path]),
      ...loopSettings(signal, deadline),
      onFinish,
    });
    const acc = accepted as { summary: FixSummary; files: string[] } | null;
    if (end.accepted && acc) {
      fix = acc.summary;
      // The branch is ready for the PR part: the fix on the base, with the test only when the
      // repository wants it in the PR.
      const withTest = config.include_test_in_pr && reproCommitSha !== null;
      const parent = withTest ? (reproCommitSha as string) : o.baseSha;
      const message = redact(
        `autofix: ${firstLine(acc.summary.summary)}\n\nRoot cause: ${acc.summary.rootCause}`,
      );
      fixCommitSha = await commitPaths(exec, parent, acc.files, message);
      await git(exec, ["update-ref", `refs/heads/${o.branch}`, fixCommitSha]);
      changedFiles = (await diffNames(exec, o.baseSha, fixCommitSha)).filter(
        (p) => !isInside(reproAbs, path.join(workspace, p)),
      );
    }
    return { code: end.code, reason: end.reason, usage: end.usage, turns: end.turns, gates };
  });
  return finishResult();
}

function firstLine(s: string): string {
  const l = s.trim().split("\n")[0] ?? "";
  return l.length > 72 ? `${l.slice(0, 69)}...` : l;
}

/** What the model is told about gate runs it asked for. */
function formatRuns(runs: readonly GateRun[]): string {
  return runs
    .map(
      (r) =>
        `run ${r.run}: ${r.timedOut ? "timed out" : `exit ${r.exitCode ?? r.signal}`} in ${(r.durationMs / 1000).toFixed(1)} s\n${r.outputTail
          .split("\n")
          .slice(-10)
          .join("\n")}`,
    )
    .join("\n\n");
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
async function testFiles(exec: JobExecutor, rel: string): Promise<string[]> {
  const workspace = exec.workspace;
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
  exec: JobExecutor,
  base: string,
  testRel: string,
  preexisting: ReadonlySet<string>,
): Promise<string[]> {
  const workspace = exec.workspace;
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

function redactDeepPlain<T>(v: T): T {
  if (typeof v === "string") return redact(v) as T;
  if (Array.isArray(v)) return v.map(redactDeepPlain) as T;
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeepPlain(x)])) as T;
  }
  return v;
}
