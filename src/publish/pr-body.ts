import type { AgentResult } from "../agent/index.js";
import type { FixJob } from "../contracts/fix-job.js";
import { redact } from "../shared/redact.js";
import { stripInvisible } from "../shared/sanitize.js";
import { type CiSummary, ciHeadline, ciTable, evidenceTable, firstSentence } from "./evidence.js";
import { codeSpan, escapeHtml, fenceBlock, modelText } from "./markdown-text.js";
import type { RecommendedWorkflow } from "./workflows.js";

export interface TestFile {
  path: string;
  content: string;
}

export interface PrBodyInput {
  /** The queued job; absent for a local `autofix run`. */
  job?: Pick<FixJob, "requestedBy" | "ci"> & {
    repository?: Pick<FixJob["repository"], "owner" | "name">;
  };
  result: AgentResult;
  workflows: RecommendedWorkflow[];
  owners: string[];
  authors: string[];
  testFiles: TestFile[];
  /** Link to the status comment or tracking issue the PR came from. */
  origin?: string;
  /** GitHub's web base (`https://github.com`, or the GHE host's); default github.com. */
  webBase?: string;
  /**
   * The only place links in the model's text may point to. Default: the job's repository on
   * `webBase`; without a job (local run), no link of the model's survives.
   */
  allowedLinkBase?: string;
}

/** Where the model's links may point for this PR. Pure. */
export function prLinkBase(
  input: Pick<PrBodyInput, "job" | "webBase" | "allowedLinkBase">,
): string | undefined {
  if (input.allowedLinkBase) return input.allowedLinkBase;
  const repo = input.job?.repository;
  if (!repo) return undefined;
  const web = (input.webBase ?? "https://github.com").replace(/\/+$/, "");
  return `${web}/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}`;
}

const MAX_TEST_CHARS = 12_000;

export function prTitle(result: AgentResult): string {
  // The summary says what the PR does in a line; the root cause is the body's.
  const basis = result.fix?.summary || result.fix?.rootCause || result.reason;
  // A title is plain text: no markup to neutralise, but nothing invisible either.
  return `Autofix: ${firstSentence(stripInvisible(basis).replace(/\s+/g, " "), 64)}`;
}

function langOf(path: string): string {
  const ext = path.split(".").pop() ?? "";
  return (
    (
      { py: "python", sh: "bash", cpp: "cpp", cc: "cpp", h: "cpp", hpp: "cpp", js: "js", ts: "ts" } as Record<
        string,
        string
      >
    )[ext] ?? ""
  );
}

function whoAsked(job: PrBodyInput["job"]): string {
  if (!job) return "a local run (`autofix run`)";
  if (job.ci) return `the repeated failure of **${job.ci.workflowName} / ${job.ci.jobName}**`;
  return `a request by @${job.requestedBy}`;
}

/**
 * The draft PR's body: what a reviewer needs to judge the fix, with the evidence. Everything
 * the model wrote is rendered as text (modelText); paths and commands as code. Pure; redacted.
 */
export function renderPrBody(input: PrBodyInput): string {
  const { result, job } = input;
  const fix = result.fix;
  const linkBase = prLinkBase(input);
  const prose = (s: string | undefined, none: string) =>
    s?.trim() ? modelText(s, { allowedLinkBase: linkBase }) : none;
  const repro = result.reproduction;
  const lines: string[] = [];
  lines.push(
    "<!-- autofix:pr -->",
    `> Draft opened by Autofix for ${whoAsked(job)}${input.origin ? ` ([status](${input.origin}))` : ""}. Review it like any other change: the evidence below was produced by running the reproduction, not by the model's word.`,
    "",
    "## Summary",
    prose(fix?.summary, "_(none given)_"),
    "",
    "## Root Cause",
    prose(fix?.rootCause, "_(none given)_"),
    "",
    "## Changes",
    prose(fix?.changes, "_(none given)_"),
    "",
    `Files: ${result.git.changedFiles.map((f) => codeSpan(f)).join(", ") || "none"}`,
    "",
    "## Evidence",
    evidenceTable(result),
    "",
  );
  if (repro) {
    lines.push(`Reproduction command (run from the repository root):`, fenceBlock(repro.command, "sh"), "");
    lines.push(
      `The reproduction's content hash was checked unchanged between the runs on the base commit and with the fix (\`${repro.hash.slice(0, 16)}\`).`,
      "",
    );
  }
  lines.push(ciSection(null), "");
  lines.push("## Performance Impact", prose(fix?.performance, "_Not measured._"), "");
  lines.push("## Recommended CI Workflows");
  lines.push(
    input.workflows.length
      ? input.workflows.map((w) => `- \`${w.workflow}\`: ${w.because}`).join("\n")
      : "- none mapped for these paths",
  );
  lines.push("", "## Relevant Developers");
  const devs: string[] = [];
  if (input.owners.length) devs.push(`- Code owners: ${input.owners.join(" ")}`);
  if (input.authors.length) devs.push(`- Recent authors of the changed files: ${input.authors.join(", ")}`);
  lines.push(devs.length ? devs.join("\n") : "- none found (no CODEOWNERS match, no history)");
  if (input.testFiles.length > 0) {
    lines.push(
      "",
      "<details>",
      `<summary>Reproduction test (${escapeHtml(repro?.path ?? "test")}; kept out of this diff)</summary>`,
      "",
    );
    let budget = MAX_TEST_CHARS;
    for (const f of input.testFiles) {
      // Redact before cutting: a cut key or token is no longer recognisable.
      const full = redact(f.content);
      const content = full.length > budget ? `${full.slice(0, Math.max(0, budget))}\n... (cut)` : full;
      budget -= content.length;
      lines.push(codeSpan(f.path), fenceBlock(content, langOf(f.path)), "");
      if (budget <= 0) break;
    }
    lines.push("</details>");
  }
  lines.push(
    "",
    `<sub>Model ${result.model} · ${result.usage.turns} turns · ~$${result.usage.costUsd.toFixed(2)} · run ${Math.round(result.durationMs / 1000)} s</sub>`,
  );
  return redact(lines.join("\n"));
}

/** The PR body's "CI on the fix" section lives between these markers, replaced as checks finish. */
export const CI_SECTION_START = "<!-- autofix:ci-on-fix -->";
export const CI_SECTION_END = "<!-- /autofix:ci-on-fix -->";

/**
 * The "CI on the fix" section: the check runs of the fix commit (null before any finished).
 * A failure is shown as a failure, never folded away. Pure.
 */
export function ciSection(summary: CiSummary | null, sha?: string): string {
  const body =
    summary === null
      ? "_Waiting for the checks of the fix commit (the branch is pushed with the app's installation token, so its workflows run)._"
      : [
          `**${ciHeadline(summary).replace(/^CI on the fix: /, "")}**${sha ? ` at \`${sha.slice(0, 10)}\`` : ""}`,
          "",
          ciTable(summary),
        ].join("\n");
  return [CI_SECTION_START, "## CI on the fix", body, CI_SECTION_END].join("\n");
}

/**
 * Put `section` (which starts and ends with its markers) in place of the text between the same
 * markers in `body`; without them, before `before` (a heading) or at the end. Pure.
 */
export function replaceSection(
  body: string,
  section: string,
  start: string,
  end: string,
  before?: string,
): string {
  const i = body.indexOf(start);
  const j = i >= 0 ? body.indexOf(end, i) : -1;
  if (i >= 0 && j >= 0) return body.slice(0, i) + section + body.slice(j + end.length);
  const at = before ? body.indexOf(before) : -1;
  if (at >= 0) return `${body.slice(0, at)}${section}\n\n${body.slice(at)}`;
  return `${body.replace(/\s+$/, "")}\n\n${section}\n`;
}
