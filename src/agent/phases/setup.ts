import { nestedObjectStores } from "../../git/submodule-checkout.js";
import { redact } from "../../shared/redact.js";
import { changedPaths, git, isGitRepo, revParse } from "../git.js";
import { loadPrompts, type PromptTemplates } from "../prompts.js";
import type { RunState } from "../run-state.js";
import { borrowedObjectStores } from "./checkout.js";

export class AgentSetupError extends Error {
  override name = "AgentSetupError";
}

/**
 * Before any phase: load the prompts and check the workspace (a git checkout, at the base
 * commit, clean, a valid branch name), then detach HEAD so the caller's branches never move.
 * A problem ends the run before it starts, with the reason.
 */
export async function setup(
  run: RunState,
): Promise<{ ok: true; prompts: PromptTemplates } | { ok: false; reason: string }> {
  const { exec, workspace } = run;
  const { baseSha, branch } = run.options;
  try {
    const prompts = await loadPrompts(run.options.promptsRoot);
    if (!(await isGitRepo(exec))) throw new AgentSetupError(`${workspace} is not a git checkout`);
    // Before anything of the model's runs: where the base's objects really come from.
    // Submodules are repositories of their own with their own stores: the gate's checkout needs them too.
    run.trustedStores = [
      ...new Set([...(await borrowedObjectStores(workspace)), ...(await nestedObjectStores(workspace))]),
    ];
    const head = await revParse(exec, "HEAD");
    const base = await revParse(exec, baseSha);
    if (head !== base)
      throw new AgentSetupError(`the workspace is at ${head}, not at the base commit ${baseSha}`);
    const dirty = await changedPaths(exec, "HEAD");
    if (dirty.length > 0) {
      throw new AgentSetupError(`the workspace has uncommitted changes (${dirty.slice(0, 5).join(", ")})`);
    }
    const ref = await git(exec, ["check-ref-format", "--branch", branch], { allowFailure: true });
    if (ref.exitCode !== 0 || !branch) throw new AgentSetupError(`"${branch}" is not a valid branch name`);
    await git(exec, ["checkout", "-q", "--detach"]);
    return { ok: true, prompts };
  } catch (err) {
    return { ok: false, reason: redact(`setup: ${(err as Error).message}`) };
  }
}
