import type { AgentResult } from "../agent/index.js";
import type { FixJob } from "../contracts/fix-job.js";
import { evidenceTable, firstSentence } from "./evidence.js";
import type { RecommendedWorkflow } from "./workflows.js";

export interface TestFile {
  path: string;
  content: string;
}

export interface PrBodyInput {
  /** The queued job; absent for a local `autofix run`. */
  job?: Pick<FixJob, "requestedBy" | "ci">;
  result: AgentResult;
  workflows: RecommendedWorkflow[];
  owners: string[];
  authors: string[];
  testFiles: TestFile[];
  /** Link to the status comment or tracking issue the PR came from. */
  origin?: string;
}

const MAX_TEST_CHARS = 12_000;

export function prTitle(result: AgentResult): string {
  const basis = result.fix?.rootCause || result.fix?.summary || result.reason;
  return `Autofix: ${firstSentence(basis, 64)}`;
}

function fence(text: string, lang = ""): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = "`".repeat(longest + 1);
  return `${f}${lang}\n${text}\n${f}`;
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

/** The draft PR's body: what a reviewer needs to judge the fix, with the evidence. Pure. */
export function renderPrBody(input: PrBodyInput): string {
  const { result, job } = input;
  const fix = result.fix;
  const repro = result.reproduction;
  const lines: string[] = [];
  lines.push(
    "<!-- autofix:pr -->",
    `> Draft opened by Autofix for ${whoAsked(job)}${input.origin ? ` ([status](${input.origin}))` : ""}. Review it like any other change: the evidence below was produced by running the reproduction, not by the model's word.`,
    "",
    "## Summary",
    fix?.summary || "_(none given)_",
    "",
    "## Root Cause",
    fix?.rootCause || "_(none given)_",
    "",
    "## Changes",
    fix?.changes || "_(none given)_",
    "",
    `Files: ${result.git.changedFiles.map((f) => `\`${f}\``).join(", ") || "none"}`,
    "",
    "## Evidence",
    evidenceTable(result),
    "",
  );
  if (repro) {
    lines.push(`Reproduction command (run from the repository root):`, fence(repro.command, "sh"), "");
    lines.push(
      `The reproduction's content hash was checked unchanged between the runs on the base commit and with the fix (\`${repro.hash.slice(0, 16)}\`).`,
      "",
    );
  }
  lines.push("## Performance Impact", fix?.performance || "_Not measured._", "");
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
      `<summary>Reproduction test (${repro?.path ?? "test"}; kept out of this diff)</summary>`,
      "",
    );
    let budget = MAX_TEST_CHARS;
    for (const f of input.testFiles) {
      const content =
        f.content.length > budget ? `${f.content.slice(0, Math.max(0, budget))}\n... (cut)` : f.content;
      budget -= content.length;
      lines.push(`\`${f.path}\``, fence(content, langOf(f.path)), "");
      if (budget <= 0) break;
    }
    lines.push("</details>");
  }
  lines.push(
    "",
    `<sub>Model ${result.model} · ${result.usage.turns} turns · ~$${result.usage.costUsd.toFixed(2)} · run ${Math.round(result.durationMs / 1000)} s</sub>`,
  );
  return lines.join("\n");
}
