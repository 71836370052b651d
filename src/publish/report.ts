import type { AgentResult } from "../agent/index.js";
import type { FixRequest } from "../contracts/fix-request.js";
import { OUTCOME_LABEL, type Outcome } from "../contracts/outcome.js";
import { redact } from "../shared/redact.js";
import { formatDuration } from "../status/index.js";
import { evidenceTable, fixIterations, gateSummaries } from "./evidence.js";
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
  const r = input.result;
  switch (status) {
    case "succeeded":
      if (!input.pullRequest) {
        return [
          `The proven fix is on the local branch \`${r?.git.branch ?? "(unknown)"}\` (${r?.git.fixCommitSha?.slice(0, 10) ?? "-"}): push it and open a pull request, or run again with a GitHub token to have Autofix do both.`,
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
          ? `The failure is reproduced by \`${r.reproduction.command}\` (kept on ${r.git.reproCommitSha ? `commit ${r.git.reproCommitSha.slice(0, 10)}` : "the workspace"}); start from it.`
          : "Start from the failing logs above.",
        input.problem
          ? `Resolve: ${input.problem}`
          : "No fix passed every gate: read the fix iterations above for what was tried and why it was refused.",
        "Run `/autofix retry` with a more specific prompt, or hand it to the owners below.",
      ];
    case "cancelled":
      return ["The run was cancelled; `/autofix retry` starts it again."];
    case "timed_out":
      return [
        `A phase ran out of time (${r?.reason ?? "budget"}). Raise the budget in .github/autofix.yml if the build or tests are slow, then retry.`,
      ];
    default:
      return [
        r?.reason ?? input.problem ?? "The run stopped before the agent.",
        "If the failure could not be reproduced, check whether it depends on hardware or data this worker lacks; try `--pool` or `--flaky`.",
        "Contact the owners below with the logs and this report.",
      ];
  }
}

/** The run report in the original framework's layout. Pure; redacted. */
export function renderReport(input: ReportInput): string {
  const r = input.result;
  const status = reportStatus(input);
  const duration = formatDuration(input.finishedAt.getTime() - input.startedAt.getTime());
  const L: string[] = [];
  const section = (title: string, ...body: string[]) => L.push(`## ${title}`, "", ...body, "");

  L.push(
    `# Autofix report: ${input.request.prompt.split("\n")[0]!.slice(0, 100)}`,
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
    r ? `${r.fix?.summary ?? r.reason}` : (input.problem ?? "The run stopped before the agent started."),
    input.problem && r ? `\nAfter the agent: ${input.problem}` : "",
  );
  section(
    "Input Configuration",
    `- deterministic: ${input.request.deterministic}`,
    `- prompt: ${input.request.prompt.split("\n")[0]}`,
    `- logs: ${input.request.url ?? (input.request.rawLogs ? "raw logs" : "none")}`,
    `- existing test: ${input.request.existingTestPath ?? "none"}`,
    ...input.logs.map(
      (l) =>
        `- failure (${l.source}): class \`${l.errorClass}\`, fingerprint \`${l.fingerprint}\`${
          l.failingTests.length
            ? `, tests ${l.failingTests
                .slice(0, 5)
                .map((t) => `\`${t}\``)
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
          `- test: \`${r.reproduction.path}\`${r.reproduction.existing ? " (existing)" : ""}`,
          `- command: \`${r.reproduction.command}\``,
          `- branch: \`${r.git.branch}\`, commit ${r.git.reproCommitSha ? `\`${r.git.reproCommitSha}\`` : "(existing test, no commit)"}`,
          `- failure mode: ${r.reproduction.failureMode}`,
          `- verification on base \`${r.git.baseSha.slice(0, 10)}\`: ${before?.verdict ?? "not run"}`,
        ].join("\n")
      : "No reproduction was accepted.",
  );
  section("Root Cause Analysis", r?.fix?.rootCause ?? "Not found.");
  const iterations = r ? fixIterations(r) : [];
  section(
    "Fix Implementation",
    r?.fix
      ? [
          `- branch: \`${r.git.branch}\` at \`${r.git.fixCommitSha ?? "-"}\``,
          `- approach: ${r.fix.changes}`,
          `- files modified: ${r.git.changedFiles.map((f) => `\`${f}\``).join(", ") || "none"}`,
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
            (i) =>
              `| ${i.n} | ${i.passed ? "accepted" : "refused"} | ${i.runs} | ${i.reason.replace(/\|/g, "\\|")} |`,
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
      : `- none${input.problem ? ` (${input.problem})` : ""}`,
    input.pushed ? `- pushed \`${input.pushed.branch}\` at \`${input.pushed.sha}\`` : "",
    `- recommended CI workflows: ${input.workflows.map((w) => `\`${w.workflow}\``).join(", ") || "none"}`,
  );
  section("Performance Impact", r?.fix?.performance ?? "Not measured.");
  section("Next Steps", ...nextSteps(status, input).map((s) => `- ${s}`));
  section(
    "Relevant Developers",
    `- owners: ${input.owners.join(" ") || "none found"}`,
    `- recent authors: ${input.authors.join(", ") || "none found"}`,
  );
  const excerpt = input.logs.find((l) => l.excerpt)?.excerpt;
  section(
    "Technical Details",
    excerpt ? `Failure excerpt:\n\n\`\`\`\n${excerpt.slice(0, 6000)}\n\`\`\`` : "No log excerpt.",
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
              `| ${p.phase} | ${p.startedAt} | ${formatDuration(p.durationMs)} | ${p.turns} | ${p.status}: ${p.reason.replace(/\|/g, "\\|")} |`,
          ),
        ].join("\n")
      : "No phase ran.",
  );
  return redact(L.join("\n"));
}

/** A few lines for the status comment's collapsed block. */
export function reportDigest(input: ReportInput): string {
  const r = input.result;
  const lines = [
    `**${OUTCOME_LABEL[reportStatus(input)]}** in ${formatDuration(input.finishedAt.getTime() - input.startedAt.getTime())}.`,
  ];
  if (r?.fix?.rootCause) lines.push(`Root cause: ${r.fix.rootCause}`);
  if (r) lines.push("", evidenceTable(r));
  if (input.problem) lines.push("", `Problem: ${input.problem}`);
  lines.push("", ...nextSteps(reportStatus(input), input).map((s) => `- ${s}`));
  return redact(lines.join("\n"));
}
