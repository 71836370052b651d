import { redact } from "../shared/redact.js";
import type { JobState, StatusStep, StatusView } from "./model.js";

/**
 * The hidden marker that finds a target's status comment again. One comment per target:
 * a retried or repeated job edits the same comment instead of adding another.
 */
export function statusMarker(target: string): string {
  return `<!-- autofix:status ${target} -->`;
}

const MARKER_RE = /<!-- autofix:status ([^\s]+) -->/;

/** The target a comment body belongs to, when it is an Autofix status comment. */
export function markerTarget(body: string | null | undefined): string | null {
  return body ? (MARKER_RE.exec(body)?.[1] ?? null) : null;
}

/** Any Autofix-authored comment carries an autofix marker; commands in it never count. */
export function isAutofixComment(body: string | null | undefined): boolean {
  return !!body && body.includes("<!-- autofix:");
}

const HEADLINE: Record<JobState, string> = {
  queued: "⏳ Queued",
  running: "🔧 Running",
  succeeded: "✅ Succeeded: draft PR ready for review",
  partial: "🟡 Partial: reproduced, but no fix passed every gate",
  failed: "❌ Failed",
  cancelled: "⏹️ Cancelled",
  timed_out: "⌛ Timed out",
};

const STEP_BOX: Record<StatusStep["state"], string> = {
  pending: "- [ ]",
  running: "- [ ] ⏳",
  done: "- [x]",
  failed: "- [ ] ❌",
  skipped: "- [x] ⏭️",
};

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Render the status comment. Pure: same view, same text. Everything passes the redactor. */
export function renderStatus(view: StatusView): string {
  const lines: string[] = [
    statusMarker(view.target),
    `### Autofix · ${view.headline && view.state !== "queued" && view.state !== "running" ? redact(view.headline) : HEADLINE[view.state]}`,
    "",
  ];
  const facts: string[] = [`pool \`${view.pool}\``];
  if (view.requestedBy) facts.push(`requested by @${view.requestedBy}`);
  facts.push(view.trigger);
  if (view.state === "queued" && view.queuePosition) facts.push(`position ${view.queuePosition} in queue`);
  if (view.elapsedMs !== undefined) facts.push(`elapsed ${formatDuration(view.elapsedMs)}`);
  if (view.spend)
    facts.push(
      `model spend ${view.spend.tokens.toLocaleString("en-US")} tokens (~$${view.spend.costUsd.toFixed(2)})`,
    );
  lines.push(facts.join(" · "), "");
  if (view.message) lines.push(view.message, "");
  if (view.steps && view.steps.length > 0) {
    for (const step of view.steps) {
      lines.push(`${STEP_BOX[step.state]} ${step.name}${step.detail ? ` (${step.detail})` : ""}`);
    }
    lines.push("");
  }
  const links: string[] = [];
  if (view.links?.pullRequest) links.push(`[Draft PR](${view.links.pullRequest})`);
  if (view.links?.report) links.push(`[Report](${view.links.report})`);
  if (view.links?.logs) links.push(`[Failing logs](${view.links.logs})`);
  if (links.length > 0) lines.push(links.join(" · "), "");
  if (view.details) {
    lines.push(
      "<details>",
      `<summary>${view.details.summary}</summary>`,
      "",
      view.details.body,
      "",
      "</details>",
      "",
    );
  }
  // A commit's status (the push trigger: target owner/repo@sha) takes no commands: GitHub sends
  // no issue_comment event for a commit comment.
  const onCommit = view.target.includes("@");
  const footer = onCommit
    ? view.state === "queued" || view.state === "running"
      ? "Started by a pushed info.json; this commit comment takes no commands."
      : "Push a changed info.json to run it again."
    : view.state === "queued" || view.state === "running"
      ? "Comment `/autofix cancel` to stop it, `/autofix status` to refresh this comment."
      : "Comment `/autofix retry` to run it again, `/autofix help` for all commands.";
  lines.push(
    `<sub>${footer} Job ${view.jobId ? `\`${view.jobId}\`` : "(not queued)"} · updated ${view.updatedAt.toISOString()}</sub>`,
  );
  return redact(lines.join("\n"));
}
