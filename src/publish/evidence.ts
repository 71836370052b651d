import type { AgentResult, GateResult, GateRun } from "../agent/index.js";
import { formatDuration } from "../status/index.js";
import { codeSpan } from "./markdown-text.js";

/** Evidence numbers shared by the PR body, the report and the status comment. Pure. */

export interface GateSummary {
  label: string;
  passed: number;
  total: number;
  verdict: string;
  durations: string;
}

function summarizeRuns(runs: readonly GateRun[]): { passed: number; total: number; durations: string } {
  const ms = runs.map((r) => r.durationMs);
  const range =
    ms.length === 0 ? "-" : `${formatDuration(Math.min(...ms))}-${formatDuration(Math.max(...ms))}`;
  return { passed: runs.filter((r) => r.passed).length, total: runs.length, durations: range };
}

function lastGate(result: AgentResult, gate: "reproduce" | "fix"): GateResult | undefined {
  return result.phases
    .flatMap((p) => p.gates)
    .filter((g) => g.gate === gate)
    .at(-1);
}

/** Before (base commit) and after (with the fix): the gate checks that decided. */
export function gateSummaries(result: AgentResult): GateSummary[] {
  const out: GateSummary[] = [];
  const before = lastGate(result, "reproduce");
  if (before) {
    const s = summarizeRuns(before.runs);
    out.push({
      label: "before: base commit",
      ...s,
      verdict: `${s.total - s.passed}/${s.total} runs failed (${before.passed ? "reproduced" : "not reproduced"})`,
    });
  }
  const after = lastGate(result, "fix");
  if (after) {
    const s = summarizeRuns(after.runs);
    out.push({
      label: "after: with the fix",
      ...s,
      verdict: `${s.passed}/${s.total} runs passed (${after.passed ? "accepted" : `refused: ${after.reason}`})`,
    });
  }
  return out;
}

/** Every fix gate check, in order: the iterations of phase 2. */
export function fixIterations(
  result: AgentResult,
): Array<{ n: number; passed: boolean; runs: string; reason: string }> {
  return result.phases
    .flatMap((p) => p.gates)
    .filter((g) => g.gate === "fix")
    .map((g, i) => ({
      n: i + 1,
      passed: g.passed,
      runs: `${g.runs.filter((r) => r.passed).length}/${g.runs.length} passed`,
      reason: g.reason,
    }));
}

export function evidenceTable(result: AgentResult): string {
  const rows = gateSummaries(result);
  if (rows.length === 0) return "_No gate ran._";
  return [
    "| check | result | run time |",
    "| --- | --- | --- |",
    ...rows.map((r) => `| ${r.label} | ${r.verdict} | ${r.durations} |`),
  ].join("\n");
}

/** First sentence of a text, at most `max` characters. */
export function firstSentence(text: string, max = 72): string {
  const one = text.replace(/\s+/g, " ").trim();
  const cut = /^(.+?[.!?])(\s|$)/.exec(one)?.[1] ?? one;
  return cut.length <= max ? cut.replace(/[.]$/, "") : `${cut.slice(0, max - 1).trimEnd()}…`;
}

/** One check run of the fix commit, as the checks API lists it. */
export interface FixCheckRun {
  name: string;
  status: string;
  conclusion: string | null;
  url?: string | null;
}

export interface CiSummary {
  /** Checks that count: everything but skipped and neutral ones. */
  total: number;
  finished: number;
  passed: number;
  failed: FixCheckRun[];
  pending: FixCheckRun[];
  skipped: number;
  /** Hardware named by the checks (pool names found in their names: N150, N300, T3K, ...). */
  hardware: string[];
  runs: FixCheckRun[];
}

const NOT_COUNTED = new Set(["skipped", "neutral"]);

/** The CI results of the fix commit. Pure. */
export function summarizeChecks(
  runs: readonly FixCheckRun[],
  hardwareNames: readonly string[] = [],
): CiSummary {
  const sorted = [...runs].sort((a, b) => a.name.localeCompare(b.name));
  const counted = sorted.filter((r) => !(r.status === "completed" && NOT_COUNTED.has(r.conclusion ?? "")));
  const done = counted.filter((r) => r.status === "completed");
  const hardware = hardwareNames.filter((h) =>
    sorted.some((r) => new RegExp(`(^|[^a-z0-9])${h}([^a-z0-9]|$)`, "i").test(r.name)),
  );
  return {
    total: counted.length,
    finished: done.length,
    passed: done.filter((r) => r.conclusion === "success").length,
    failed: done.filter((r) => r.conclusion !== "success"),
    pending: counted.filter((r) => r.status !== "completed"),
    skipped: sorted.length - counted.length,
    hardware: hardware.map((h) => h.toUpperCase()),
    runs: sorted,
  };
}

/** "CI on the fix: 12/12 passed on N300", or what failed, or how far it got. Pure. */
export function ciHeadline(s: CiSummary): string {
  const on = s.hardware.length > 0 ? ` on ${s.hardware.join(", ")}` : "";
  if (s.total === 0) return "CI on the fix: no check has run on the fix commit yet";
  if (s.failed.length > 0) {
    const names = s.failed
      .slice(0, 3)
      .map((r) => `${codeSpan(r.name)} (${r.conclusion ?? "failed"})`)
      .join(", ");
    return `CI on the fix: ❌ ${s.failed.length} of ${s.total} failed${on}: ${names}${s.failed.length > 3 ? ` and ${s.failed.length - 3} more` : ""}${s.pending.length > 0 ? `; ${s.pending.length} still running` : ""}`;
  }
  if (s.pending.length > 0)
    return `CI on the fix: ${s.passed}/${s.total} passed so far${on}, ${s.pending.length} still running`;
  return `CI on the fix: ✅ ${s.passed}/${s.total} passed${on}`;
}

/** The check runs as a table for the PR's evidence. Pure; names are shown as code. */
export function ciTable(s: CiSummary): string {
  if (s.runs.length === 0) return "_No check has run on the fix commit yet._";
  const cell = (t: string) => `\`${t.replace(/[`|\r\n]/g, "'").slice(0, 120)}\``;
  const result = (r: FixCheckRun) =>
    r.status !== "completed"
      ? "⏳ running"
      : r.conclusion === "success"
        ? "✅ passed"
        : NOT_COUNTED.has(r.conclusion ?? "")
          ? `⏭️ ${r.conclusion}`
          : `❌ ${r.conclusion ?? "failed"}`;
  const rows = s.runs.slice(0, 50).map((r) => {
    const link = r.url && /^https:\/\//.test(r.url) ? ` ([details](${r.url}))` : "";
    return `| ${cell(r.name)} | ${result(r)}${link} |`;
  });
  return [
    "| check | result |",
    "| --- | --- |",
    ...rows,
    ...(s.runs.length > 50 ? [`| ... | ${s.runs.length - 50} more |`] : []),
  ].join("\n");
}
