import { OUTCOME_LABEL } from "../../contracts/outcome.js";
import { provenButUnpublished } from "../../pipeline/job-runner.js";
import type { PipelineOutput } from "../../pipeline/run.js";
import { localReproCommand, proveCommand } from "../../publish/report.js";
import { OUTCOME_EXIT } from "../command.js";

/**
 * How `autofix run` ends on the terminal: the outcome, what it left in the repository, what was
 * (or in a dry run would be) published, where the report is, and the exit code.
 */

/** The exit code of a finished run: the outcome's (0 success, 3 partial, 1 otherwise). */
export function runExitCode(out: Pick<PipelineOutput, "status">): number {
  return OUTCOME_EXIT[out.status];
}

/**
 * The lines after the run (unredacted; the caller redacts), the report's path last. `repo`
 * (the person's repository) goes into the commands printed when it is not the current folder.
 */
export function summaryLines(out: PipelineOutput, branch: string, dryRun: boolean, repo?: string): string[] {
  const lines: string[] = [];
  const say = (l: string) => lines.push(l);
  const r = out.result;
  say("");
  say(
    `Status: ${OUTCOME_LABEL[out.status]} (exit ${runExitCode(out)})${
      provenButUnpublished(out)
        ? ": the fix was proven, but it could not be published"
        : r && out.status !== "succeeded"
          ? `: ${r.reason}`
          : ""
    }`,
  );
  if (r?.git.fixCommitSha)
    say(
      `  fix:          branch ${branch} at ${r.git.fixCommitSha.slice(0, 12)} (changed: ${r.git.changedFiles.join(", ") || "none"}); see it with: git show ${branch}`,
    );
  else say("  fix:          none accepted; no fix branch was created");
  if (r?.reproduction) {
    // The test is only in the repro ref (not on the fix branch, not in the working tree).
    if (r.git.reproCommitSha) {
      say(
        `  reproduction: refs/autofix-repro/${branch} at ${r.git.reproCommitSha.slice(0, 12)} (${r.reproduction.path})`,
      );
      say(
        `    run it:     ${localReproCommand({ branch, command: r.reproduction.command, ...(repo ? { repo } : {}) })}`,
      );
      if (r.git.fixCommitSha)
        say(
          `    prove it:   ${proveCommand(branch, repo)}  (in the sandbox: fails on the base, passes on the fix)`,
        );
    } else say(`  reproduction: existing test ${r.reproduction.path} (${r.reproduction.command})`);
  }
  if (out.pushed) say(`  pushed:       ${out.pushed.branch} at ${out.pushed.sha.slice(0, 12)} to origin`);
  if (out.pullRequest)
    say(`  pull request: ${out.pullRequest.url} (${out.pullRequest.created ? "opened, draft" : "updated"})`);
  if (out.planned.length > 0) {
    say(dryRun ? "  dry run: nothing was pushed or opened; it would:" : "  publishing:");
    for (const l of out.planned) say(`    - ${l}`);
  }
  if (out.problem) say(`  problem:      ${out.problem}`);
  say(`Report: ${out.reportPath}`);
  return lines;
}
