import type { JobFailure } from "./github.js";
import type { FailureGroup } from "./group.js";

/** What a person reads in a terminal or a comment for one triaged log. */
export function renderFailure(f: JobFailure): string {
  const t = f.triage;
  const out: string[] = [];
  const job = f.job;
  out.push(`== ${f.label}${job?.url ? ` (${job.url})` : ""}`);
  if (job) {
    const facts = [
      `conclusion ${job.conclusion ?? job.status}`,
      job.runAttempt ? `attempt ${job.runAttempt}` : null,
      job.runnerName ? `runner ${job.runnerName}` : null,
      job.labels.length ? `labels ${job.labels.join(", ")}` : null,
    ].filter(Boolean);
    out.push(`   ${facts.join(" | ")}`);
    if (job.failedSteps.length) out.push(`   failed steps: ${job.failedSteps.join(", ")}`);
  }
  if (t.stats.bytes === 0) {
    out.push(
      "   the log is empty (0 bytes): nothing to triage (an expired or not yet written log reads empty)",
    );
  } else if (!t.failureFound) {
    out.push(
      `   no failure recognised in ${t.stats.lines} line${t.stats.lines === 1 ? "" : "s"} (fingerprint ${t.fingerprint})`,
    );
  } else {
    out.push(`   class:       ${t.errorClass} (${t.family})`);
    out.push(`   fingerprint: ${t.fingerprint}`);
    if (t.primary) {
      out.push(
        `   error:       ${t.primary.message}  [line ${t.primary.line}${t.primary.step ? `, step "${t.primary.step}"` : ""}]`,
      );
    }
    if (t.failingTests.length) {
      out.push(
        `   failing tests (${t.failingTests.length + t.failingTestsOmitted}):`,
        ...t.failingTests.slice(0, 20).map((x) => `     - ${x}`),
      );
      const more = t.failingTests.length - 20 + t.failingTestsOmitted;
      if (more > 0) out.push(`     ... and ${more} more`);
    }
    const others = t.hits.filter((h) => h.family !== t.family && h.family !== "exit-code");
    if (others.length) {
      out.push(
        `   also seen:   ${others.map((h) => `${h.family} x${h.count} (line ${h.firstLine})`).join(", ")}`,
      );
    }
  }
  for (const a of f.annotations.slice(0, 5)) {
    out.push(
      `   annotation:  [${a.level}] ${a.message.split("\n")[0]}${a.path ? ` (${a.path}${a.line ? `:${a.line}` : ""})` : ""}`,
    );
  }
  if (t.excerpt) out.push("", t.excerpt, "");
  return out.join("\n");
}

/** The cross-log summary: one paragraph per distinct failure. */
export function renderGroups(groups: FailureGroup[]): string {
  const total = groups.reduce((n, g) => n + g.members.length, 0);
  const out = [`== ${groups.length} distinct failure${groups.length === 1 ? "" : "s"} across ${total} logs`];
  for (const g of groups) {
    out.push(
      `-- ${g.fingerprint} ${g.errorClass} in ${g.members.length} log${g.members.length === 1 ? "" : "s"}: ${g.members.join(", ")}`,
    );
    out.push(`   ${g.example ?? g.signature}`);
    for (const s of g.same) out.push(`   same   ${s}`);
    for (const d of g.differences) out.push(`   differ ${d}`);
  }
  return out.join("\n");
}
