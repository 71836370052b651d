import type { ErrorClass, Family } from "./classify.js";
import type { JobFailure } from "./github.js";

/** Several logs that fail the same way, and what differs between them. */
export interface FailureGroup {
  fingerprint: string;
  errorClass: ErrorClass;
  family: Family | null;
  signature: string;
  /** Primary message of the first member, as printed. */
  example: string | null;
  members: string[];
  /** Facts that hold for every member ("runner labels: N150, in-service"). */
  same: string[];
  /** Facts that differ ("runner: vm-1 (2), vm-2 (1)"). */
  differences: string[];
}

type Dim = { name: string; of: (f: JobFailure) => string | null };

const DIMENSIONS: Dim[] = [
  { name: "job", of: (f) => f.job?.name ?? null },
  { name: "runner", of: (f) => f.job?.runnerName ?? null },
  { name: "runner labels", of: (f) => (f.job?.labels.length ? [...f.job.labels].sort().join(", ") : null) },
  { name: "attempt", of: (f) => (f.job?.runAttempt ? String(f.job.runAttempt) : null) },
  { name: "failed step", of: (f) => f.job?.failedSteps.join(", ") || f.triage.primary?.step || null },
];

function countValues(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([v, n]) => `${v} (${n})`)
    .join(", ");
}

const MAX_LISTED = 8;
const list = (xs: string[]) =>
  xs.length > MAX_LISTED
    ? `${xs.slice(0, MAX_LISTED).join(", ")}, +${xs.length - MAX_LISTED} more`
    : xs.join(", ");

/**
 * Group triaged logs by fingerprint (largest group first) and say, within each group, which
 * jobs, runners, labels, attempts, steps and tests differ: the cross-job comparison the
 * original framework left to the model.
 */
export function groupByFingerprint(items: JobFailure[]): FailureGroup[] {
  const byFp = new Map<string, JobFailure[]>();
  for (const it of items) {
    const fp = it.triage.fingerprint;
    byFp.set(fp, [...(byFp.get(fp) ?? []), it]);
  }
  const groups: FailureGroup[] = [];
  for (const [fingerprint, members] of byFp) {
    const first = members[0]!;
    const same: string[] = [];
    const differences: string[] = [];
    for (const d of DIMENSIONS) {
      const values = members.map(d.of).filter((v): v is string => v !== null);
      if (values.length === 0) continue;
      const distinct = new Set(values);
      if (distinct.size === 1 && values.length === members.length) {
        if (members.length > 1) same.push(`${d.name}: ${values[0]}`);
      } else {
        differences.push(`${d.name}: ${countValues(values)}`);
      }
    }
    // Tests: which failed everywhere, which only in some logs.
    const sets = members.map((m) => new Set(m.triage.failingTests));
    const all = [...new Set(members.flatMap((m) => m.triage.failingTests))];
    const everywhere = all.filter((t) => sets.every((s) => s.has(t)));
    if (everywhere.length > 0 && members.length > 1) same.push(`failing tests: ${list(everywhere)}`);
    if (members.length > 1) {
      for (const m of members) {
        const own = m.triage.failingTests.filter((t) => !everywhere.includes(t));
        if (own.length > 0) differences.push(`only in ${m.label}: ${list(own)}`);
      }
    }
    groups.push({
      fingerprint,
      errorClass: first.triage.errorClass,
      family: first.triage.family,
      signature: first.triage.signature,
      example: first.triage.primary?.message ?? null,
      members: members.map((m) => m.label),
      same,
      differences,
    });
  }
  return groups.sort((a, b) => b.members.length - a.members.length);
}
