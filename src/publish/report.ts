import type { AgentResult } from "../agent/index.js";
import type { FixRequest } from "../contracts/fix-request.js";
import { OUTCOME_LABEL, type Outcome } from "../contracts/outcome.js";
import { redact } from "../shared/redact.js";
import { shellQuote } from "../shared/shell.js";
import { formatDuration } from "../status/index.js";
import { evidenceTable, fixIterations, gateSummaries } from "./evidence.js";
import { codeSpan, fenceBlock, type ModelTextOptions, modelText } from "./markdown-text.js";
import type { RecommendedWorkflow } from "./workflows.js";

/** What the log intake found, as the report shows it. */
export interface LogSummary {
  source: string;
  errorClass: string;
  failingTests: string[];
  fingerprint: string;
  excerpt: string;
}

export interface ReportInput {
  /** `git diff` of the proven fix against the base (source files only), for a reviewer to read. */
  fixDiff?: string;
  runId: string;
  /** Where the request came from: "`/autofix` comment on o/r#12", "local run", ... */
  origin: string;
  request: FixRequest;
  logs: LogSummary[];
  /** Null when the run stopped before the agent (bad logs, workspace error). */
  result: AgentResult | null;
  pullRequest: { url: string; number: number; created: boolean } | null;
  pushed: { branch: string; sha: string } | null;
  /** A problem after the agent (push refused, PR API error) or before it. */
  problem?: string;
  workflows: RecommendedWorkflow[];
  owners: string[];
  authors: string[];
  startedAt: Date;
  finishedAt: Date;
  environment: Record<string, string>;
  /** The only place links in the model's text may point to (the repository's web URL). */
  allowedLinkBase?: string;
  /**
   * A local run (`autofix run`): the next steps are commands on the person's machine, not
   * comment options. Absent: local when `environment.mode` is LOCAL_RUN_MODE (what
   * `autofix run` passes through runPipeline's `environment`).
   */
  local?: boolean;
}

/** `environment.mode` of a local run's report (src/cli/commands/run.ts). */
export const LOCAL_RUN_MODE = "local (autofix run)";

/** Whether the report is of a local run (see ReportInput.local). Pure. */
export function isLocalRun(input: Pick<ReportInput, "local" | "environment">): boolean {
  return input.local ?? input.environment.mode === LOCAL_RUN_MODE;
}

/**
 * A command that runs the frozen reproduction test of `branch` in a checkout of the person's
 * repository: the test lives only in `refs/autofix-repro/<branch>` (not on the fix branch, not
 * in the working tree), so it is checked out in a temporary worktree first, run there, and the
 * worktree removed. `repo` adds `git -C <repo>`. Runs on the host: `autofix prove` runs the
 * same test in the sandbox. Pure.
 */
export function localReproCommand(o: { branch: string; command: string; repo?: string }): string {
  const dir = `/tmp/autofix-repro-${o.branch.replace(/[^A-Za-z0-9._-]+/g, "-")}`;
  const git = o.repo ? `git -C ${shellQuote(o.repo)}` : "git";
  const ref = shellQuote(`refs/autofix-repro/${o.branch}`);
  return `${git} worktree add --detach ${shellQuote(dir)} ${ref} && (cd ${shellQuote(dir)} && ${o.command}); ${git} worktree remove --force ${shellQuote(dir)}`;
}

/** `autofix prove <branch>`, with `--repo` when given. Pure. */
export function proveCommand(branch: string, repo?: string): string {
  return `autofix prove${repo ? ` --repo ${shellQuote(repo)}` : ""} ${shellQuote(branch)}`;
}

/** Renderers for text Autofix did not write, bound to the report's link base. */
function texts(input: Pick<ReportInput, "allowedLinkBase">) {
  const o: ModelTextOptions = { allowedLinkBase: input.allowedLinkBase };
  return {
    block: (s: string | null | undefined) => modelText(s, o),
    line: (s: string | null | undefined) => modelText(s, { ...o, inline: true }),
    cell: (s: string | null | undefined) => modelText(s, { ...o, cell: true }),
  };
}

/**
 * The run's outcome as published: the agent's, except that a proven fix that could not be
 * published is partial. Pure.
 */
export function reportStatus(input: Pick<ReportInput, "result" | "problem" | "pullRequest">): Outcome {
  const s = input.result?.status;
  if (!s) return "failed";
  if (s === "succeeded" && input.problem && !input.pullRequest) return "partial";
  return s;
}

/** The first words of a prompt's first line as a file or branch name part: `gather-times-out`. */
export function promptSlug(prompt: string, fallback: string): string {
  return (
    prompt
      .toLowerCase()
      .split("\n")[0]!
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .split("-")
      .slice(0, 6)
      .join("-")
      .slice(0, 48)
      .replace(/-+$/, "") || fallback
  );
}

/** `outputs/YYYY-MM-DD_HH-MM-SS_<slug>.md`, named from the run's start (UTC) and the prompt. */
export function reportFileName(startedAt: Date, prompt: string): string {
  const iso = startedAt.toISOString();
  const stamp = `${iso.slice(0, 10)}_${iso.slice(11, 19).replace(/:/g, "-")}`;
  return `${stamp}_${promptSlug(prompt, "run")}.md`;
}

function nextSteps(status: Outcome, input: ReportInput): string[] {
  if (isLocalRun(input)) return localNextSteps(status, input);
  const r = input.result;
  const t = texts(input);
  switch (status) {
    case "succeeded":
      if (!input.pullRequest) {
        return [
          `The proven fix is on the local branch ${codeSpan(r?.git.branch ?? "(unknown)")} (${r?.git.fixCommitSha?.slice(0, 10) ?? "-"}): push it and open a pull request, or run again with a GitHub token to have Autofix do both.`,
          "Run the recommended CI workflows on it before review.",
        ];
      }
      return [
        `Review the draft PR (${input.pullRequest.url}) and run the recommended CI workflows on it.`,
        "If reviewers agree, mark it ready for review; the reproduction test is in the PR description and can be added as a regression test.",
      ];
    case "partial":
      return [
        r?.reproduction
          ? `The failure is reproduced by ${codeSpan(r.reproduction.command)} (kept on ${r.git.reproCommitSha ? `commit ${r.git.reproCommitSha.slice(0, 10)}` : "the workspace"}); start from it.`
          : "Start from the failing logs above.",
        input.problem
          ? `Resolve: ${t.line(input.problem)}`
          : "No fix passed every gate: read the fix iterations above for what was tried and why it was refused.",
        "Run `/autofix retry` with a more specific prompt, or hand it to the owners below.",
      ];
    case "cancelled":
      return ["The run was cancelled; `/autofix retry` starts it again."];
    case "timed_out":
      return [
        `A phase ran out of time (${t.line(r?.reason ?? "budget")}). Raise the budget in .github/autofix.yml if the build or tests are slow, then retry.`,
      ];
    default:
      return [
        t.line(r?.reason ?? input.problem ?? "The run stopped before the agent."),
        "If the failure could not be reproduced, check whether it depends on hardware or data this worker lacks; try `--pool` or `--flaky`.",
        "Contact the owners below with the logs and this report.",
      ];
  }
}

/**
 * The next steps of a local run: commands on the person's machine (`autofix run` again,
 * `autofix prove`, git), never the comment's `/autofix retry`, `--pool` or `--flaky`.
 */
function localNextSteps(status: Outcome, input: ReportInput): string[] {
  const r = input.result;
  const t = texts(input);
  const branch = r?.git.branch;
  const again =
    "Run `autofix run` again with a sharper prompt (the function or file at fault, the expected behaviour, what the logs show), or give an existing failing test as `existing-test-path` in info.json.";
  const reproHint =
    r?.reproduction && branch
      ? r.git.reproCommitSha
        ? `The failure is reproduced by the test kept on ${codeSpan(`refs/autofix-repro/${branch}`)}; run it with ${codeSpan(localReproCommand({ branch, command: r.reproduction.command }))}.`
        : `The failure is reproduced by ${codeSpan(r.reproduction.command)} (an existing test); start from it.`
      : null;
  switch (status) {
    case "succeeded":
      return [
        input.pullRequest
          ? `Review the draft PR (${input.pullRequest.url})${input.workflows.length > 0 ? " and run the recommended CI workflows on it" : ""}.`
          : `The proven fix is on the local branch ${codeSpan(branch ?? "(unknown)")} (${r?.git.fixCommitSha?.slice(0, 10) ?? "-"}): push it and open a pull request, or run again with a GitHub token to have Autofix do both.`,
        ...(input.pullRequest || input.workflows.length === 0
          ? []
          : ["Run the recommended CI workflows on it before review."]),
        ...(branch && r?.git.reproCommitSha
          ? [
              `Re-run the proof in the sandbox (the frozen test fails on the base, passes on the fix): ${codeSpan(proveCommand(branch))}.`,
            ]
          : []),
      ];
    case "partial":
      return [
        reproHint ?? "Start from the failing logs above.",
        input.problem
          ? `Resolve: ${t.line(input.problem)}`
          : "No fix passed every gate: read the fix iterations above for what was tried and why it was refused.",
        `${again} Or hand it to the owners below.`,
      ];
    case "cancelled":
      return ["The run was stopped; `autofix run` with the same info.json starts it again."];
    case "timed_out":
      return [
        `A phase ran out of time (${t.line(r?.reason ?? "budget")}). Raise the budget in .github/autofix.yml if the build or tests are slow, then run \`autofix run\` again.`,
      ];
    default:
      return [
        t.line(r?.reason ?? input.problem ?? "The run stopped before the agent."),
        'If the failure could not be reproduced, check whether it depends on hardware or data this machine lacks (run where the failure happened), or whether it is flaky (`"deterministic": false` in info.json).',
        again,
        "Contact the owners below with the logs and this report.",
      ];
  }
}

/**
 * The run report in the original framework's layout. Everything the model (or a log, or a
 * request) supplied is rendered as text (modelText); paths and commands as code. Pure; redacted.
 */
export function renderReport(input: ReportInput): string {
  const r = input.result;
  const t = texts(input);
  const status = reportStatus(input);
  const duration = formatDuration(input.finishedAt.getTime() - input.startedAt.getTime());
  const L: string[] = [];
  const section = (title: string, ...body: string[]) => L.push(`## ${title}`, "", ...body, "");

  L.push(
    `# Autofix report: ${t.line(input.request.prompt.split("\n")[0]!.slice(0, 100))}`,
    "",
    `- **Generated:** ${input.finishedAt.toISOString()}`,
    `- **Status:** ${OUTCOME_LABEL[status]}`,
    `- **Duration:** ${duration}`,
    `- **Run id:** ${input.runId}`,
    `- **Origin:** ${input.origin}`,
    "",
  );
  section(
    "Summary",
    r
      ? t.block(r.fix?.summary ?? r.reason)
      : t.block(input.problem ?? "The run stopped before the agent started."),
    input.problem && r ? `\nAfter the agent: ${t.line(input.problem)}` : "",
  );
  section(
    "Input Configuration",
    `- deterministic: ${input.request.deterministic}`,
    `- prompt: ${t.line(input.request.prompt.split("\n")[0])}`,
    `- logs: ${input.request.url ?? (input.request.rawLogs ? "raw logs" : "none")}`,
    `- existing test: ${input.request.existingTestPath ? codeSpan(input.request.existingTestPath) : "none"}`,
    ...input.logs.map(
      (l) =>
        `- failure (${t.line(l.source)}): class ${codeSpan(l.errorClass)}, fingerprint ${codeSpan(l.fingerprint)}${
          l.failingTests.length
            ? `, tests ${l.failingTests
                .slice(0, 5)
                .map((x) => codeSpan(x))
                .join(", ")}`
            : ""
        }`,
    ),
  );
  const before = r ? gateSummaries(r).find((g) => g.label.startsWith("before")) : undefined;
  section(
    "Reproduction",
    r?.reproduction
      ? [
          `- test: ${codeSpan(r.reproduction.path)}${r.reproduction.existing ? " (existing)" : ""}`,
          `- command: ${codeSpan(r.reproduction.command)}`,
          `- branch: ${codeSpan(r.git.branch)}, commit ${r.git.reproCommitSha ? `\`${r.git.reproCommitSha}\`` : "(existing test, no commit)"}`,
          `- failure mode: ${t.line(r.reproduction.failureMode)}`,
          `- verification on base \`${r.git.baseSha.slice(0, 10)}\`: ${t.line(before?.verdict ?? "not run")}`,
        ].join("\n")
      : "No reproduction was accepted.",
  );
  section("Root Cause Analysis", r?.fix?.rootCause ? t.block(r.fix.rootCause) : "Not found.");
  const iterations = r ? fixIterations(r) : [];
  section(
    "Fix Implementation",
    r?.fix
      ? [
          `- branch: ${codeSpan(r.git.branch)} at \`${r.git.fixCommitSha ?? "-"}\``,
          `- files modified: ${r.git.changedFiles.map((f) => codeSpan(f)).join(", ") || "none"}`,
          "- approach:",
          "",
          t.block(r.fix.changes),
          ...(input.fixDiff?.trim()
            ? ["", "The change:", "", fenceBlock(clipDiff(redact(input.fixDiff)), "diff")]
            : []),
        ].join("\n")
      : "No fix was accepted.",
    "",
    "Iterations (each fix the harness checked):",
    "",
    iterations.length
      ? [
          "| # | result | runs | reason |",
          "| --- | --- | --- | --- |",
          ...iterations.map(
            (i) => `| ${i.n} | ${i.passed ? "accepted" : "refused"} | ${i.runs} | ${t.cell(i.reason)} |`,
          ),
        ].join("\n")
      : "_none_",
    "",
    "Before and after:",
    "",
    r ? evidenceTable(r) : "_no gate ran_",
  );
  section(
    "Stability Runs",
    r?.gateRuns.length
      ? [
          "| gate | run | exit | time | result |",
          "| --- | --- | --- | --- | --- |",
          ...r.gateRuns.map(
            (g) =>
              `| ${g.gate} | ${g.run} | ${g.exitCode ?? g.signal ?? "-"}${g.timedOut ? " (timeout)" : ""} | ${formatDuration(g.durationMs)} | ${g.passed ? "pass" : "fail"} |`,
          ),
        ].join("\n")
      : "None.",
  );
  section(
    "Pull Request",
    input.pullRequest
      ? `- ${input.pullRequest.created ? "opened" : "updated"}: ${input.pullRequest.url}`
      : `- none${input.problem ? ` (${t.line(input.problem)})` : ""}`,
    input.pushed ? `- pushed \`${input.pushed.branch}\` at \`${input.pushed.sha}\`` : "",
    `- recommended CI workflows: ${input.workflows.map((w) => `\`${w.workflow}\``).join(", ") || "none"}`,
  );
  section("Performance Impact", r?.fix?.performance ? t.block(r.fix.performance) : "Not measured.");
  section("Next Steps", ...nextSteps(status, input).map((s) => `- ${s}`));
  section(
    "Relevant Developers",
    `- owners: ${input.owners.join(" ") || "none found"}`,
    `- recent authors: ${input.authors.join(", ") || "none found"}`,
  );
  const excerpt = input.logs.find((l) => l.excerpt)?.excerpt;
  section(
    "Technical Details",
    // Redact before cutting; a fence the excerpt cannot close.
    excerpt ? `Failure excerpt:\n\n${fenceBlock(redact(excerpt).slice(0, 6000))}` : "No log excerpt.",
    "",
    "Environment:",
    ...Object.entries(input.environment).map(([k, v]) => `- ${k}: ${v}`),
    r
      ? `- model: ${r.model}, ${r.usage.turns} turns, ${r.usage.inputTokens + r.usage.outputTokens} tokens, ~$${r.usage.costUsd.toFixed(2)}`
      : "",
  );
  section(
    "Execution Timeline",
    r?.phases.length
      ? [
          "| phase | started | duration | turns | result |",
          "| --- | --- | --- | --- | --- |",
          ...r.phases.map(
            (p) =>
              `| ${p.phase} | ${p.startedAt} | ${formatDuration(p.durationMs)} | ${p.turns} | ${p.status}: ${t.cell(p.reason)} |`,
          ),
        ].join("\n")
      : "No phase ran.",
  );
  return redact(L.join("\n"));
}

/** A few lines for the status comment's collapsed block. */
export function reportDigest(input: ReportInput): string {
  const r = input.result;
  const t = texts(input);
  const lines = [
    `**${OUTCOME_LABEL[reportStatus(input)]}** in ${formatDuration(input.finishedAt.getTime() - input.startedAt.getTime())}.`,
  ];
  if (r?.fix?.rootCause) lines.push(`Root cause: ${t.line(r.fix.rootCause)}`);
  if (r) lines.push("", evidenceTable(r));
  if (input.problem) lines.push("", `Problem: ${t.line(input.problem)}`);
  lines.push("", ...nextSteps(reportStatus(input), input).map((s) => `- ${s}`));
  return redact(lines.join("\n"));
}

/** At most 200 lines of a diff, saying how many were left out. Pure. */
export function clipDiff(diff: string, maxLines = 200): string {
  const lines = diff.replace(/\n$/, "").split("\n");
  if (lines.length <= maxLines) return lines.join("\n");
  return [
    ...lines.slice(0, maxLines),
    `... ${lines.length - maxLines} more lines: git diff the branch to see them all`,
  ].join("\n");
}
