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
