import type { AgentResult, GateResult, GateRun } from "../agent/index.js";
import { formatDuration } from "../status/index.js";

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
