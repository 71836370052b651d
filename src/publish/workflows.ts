import type { ProbotOctokit } from "probot";
import type { RepoConfig } from "../config/repo-config.js";
import { matchesGlob } from "./glob.js";

export interface RecommendedWorkflow {
  workflow: string;
  /** Why: the changed paths that matched, or "the workflow that failed". */
  because: string;
}

/** Workflows worth running on the PR: the one that failed, then the repo map by changed paths. */
export function recommendWorkflows(
  changed: readonly string[],
  map: RepoConfig["recommended_workflows"],
  failedWorkflow?: string,
): RecommendedWorkflow[] {
  const out: RecommendedWorkflow[] = [];
  const seen = new Set<string>();
  if (failedWorkflow) {
    out.push({ workflow: failedWorkflow, because: "the workflow that failed" });
    seen.add(failedWorkflow);
  }
  for (const entry of map) {
    const hits = changed.filter((p) => entry.paths.some((g) => matchesGlob(p, g)));
    if (hits.length === 0) continue;
    for (const w of entry.workflows) {
      if (seen.has(w)) continue;
      seen.add(w);
      out.push({
        workflow: w,
        because: `changes ${hits
          .slice(0, 3)
          .map((h) => `\`${h}\``)
          .join(", ")}${hits.length > 3 ? ` and ${hits.length - 3} more` : ""}`,
      });
    }
  }
  return out;
}

export interface DispatchResult {
  workflow: string;
  ok: boolean;
  /** Why not: "the app lacks actions: write", "workflow has no workflow_dispatch trigger", ... */
  error?: string;
}

/**
 * Start workflows on the fix branch with `workflow_dispatch` (for workflows that do not run on
 * push: the push itself, made with the installation token, starts the others). Each workflow
 * is tried once; a refusal is reported per workflow, never thrown.
 */
export async function dispatchWorkflows(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  branch: string,
  workflows: ReadonlyArray<string | number>,
): Promise<DispatchResult[]> {
  const out: DispatchResult[] = [];
  for (const w of workflows.slice(0, 20)) {
    try {
      await octokit.rest.actions.createWorkflowDispatch({ ...repo, workflow_id: w, ref: branch });
      out.push({ workflow: String(w), ok: true });
    } catch (err) {
      const status = (err as { status?: number }).status;
      const error =
        status === 403
          ? "the app lacks the actions: write permission"
          : status === 404
            ? "no such workflow"
            : status === 422
              ? "the workflow has no workflow_dispatch trigger"
              : ((err as Error).message.split("\n")[0] ?? "error");
      out.push({ workflow: String(w), ok: false, error });
    }
  }
  return out;
}
