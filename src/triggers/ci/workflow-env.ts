import { parse as parseYaml } from "yaml";
import { parseContainerOptions } from "../../config/container-options.js";

/**
 * What the failed CI job ran in and ran: its `container:` (image, env, options), the failed
 * step's `run:` command and the job's `timeout-minutes`, read from the workflow file at the
 * run's commit. Only literal values are taken: anything holding a `${{ }}` expression (inputs,
 * matrix values, variables) is left out and said why. Pure.
 */

export interface WorkflowEnvironment {
  image?: string;
  env: Record<string, string>;
  options: string[];
  workdir?: string;
  notes: string[];
}

export interface WorkflowCommand {
  step: string;
  run: string;
  timeoutMinutes?: number;
  workingDirectory?: string;
}

export interface WorkflowJobFacts {
  /** The workflow's job id (the key under `jobs:`), when the Actions job was found. */
  jobId?: string;
  environment?: WorkflowEnvironment;
  command?: WorkflowCommand;
  /** Why something was not taken. */
  notes: string[];
}

const EXPR = /\$\{\{/;
const isLiteral = (v: unknown): v is string | number | boolean =>
  (typeof v === "string" && !EXPR.test(v)) || typeof v === "number" || typeof v === "boolean";

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;

function literalEnv(raw: unknown, where: string, notes: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const o = asObj(raw);
  if (raw !== undefined && !o) {
    notes.push(`${where} env is not a literal mapping`);
    return out;
  }
  const skipped: string[] = [];
  for (const [k, v] of Object.entries(o ?? {})) {
    if (isLiteral(v)) out[k] = String(v);
    else skipped.push(k);
  }
  if (skipped.length) notes.push(`${where} env ${skipped.join(", ")} not taken: not literal (\${{ }})`);
  return out;
}

/** Find the workflow job an Actions job name belongs to: its `name:` or its id; matrix jobs add ` (...)`. */
export function findWorkflowJob(
  jobs: Obj,
  actionsJobName: string,
): { id: string; job: Obj; matrix: boolean } | null {
  const candidates: Array<{ id: string; job: Obj; matrix: boolean }> = [];
  for (const [id, raw] of Object.entries(jobs)) {
    const job = asObj(raw);
    if (!job) continue;
    const name = typeof job.name === "string" ? job.name : id;
    if (name === actionsJobName || id === actionsJobName) return { id, job, matrix: false };
    if (!EXPR.test(name) && actionsJobName.startsWith(`${name} (`))
      candidates.push({ id, job, matrix: true });
  }
  return candidates.length === 1 ? candidates[0]! : null;
}

/** The step the jobs API names: its `name:`, or `Run <first line of run>` for unnamed ones. */
function findStep(steps: unknown[], stepName: string): Obj | null {
  for (const raw of steps) {
    const s = asObj(raw);
    if (!s) continue;
    if (typeof s.name === "string" && s.name === stepName) return s;
    if (s.name === undefined && typeof s.run === "string") {
      const first = s.run.trim().split("\n")[0]!.trim();
      // GitHub names it after the first line with its expressions evaluated.
      const pattern = first
        .split(/\$\{\{.*?\}\}/)
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*");
      if (new RegExp(`^Run ${pattern}`).test(stepName)) return s;
    }
  }
  return null;
}

export function readWorkflowJob(
  text: string,
  actionsJobName: string,
  failedStep: string | null,
): WorkflowJobFacts {
  const notes: string[] = [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { notes: [`the workflow is not valid YAML: ${(err as Error).message.split("\n")[0]}`] };
  }
  const jobs = asObj(asObj(doc)?.jobs);
  if (!jobs) return { notes: ["the workflow has no jobs mapping"] };
  const found = findWorkflowJob(jobs, actionsJobName);
  if (!found) return { notes: [`no job of the workflow is named "${actionsJobName}"`] };
  const { id, job } = found;
  if (job.uses !== undefined)
    return { jobId: id, notes: [`job ${id} calls a reusable workflow: its container is not read`] };
  if (found.matrix) notes.push(`job ${id} is a matrix job: only its literal values are taken`);
  const out: WorkflowJobFacts = { jobId: id, notes };

  const rawContainer = job.container;
  const container = typeof rawContainer === "string" ? { image: rawContainer } : asObj(rawContainer);
  if (rawContainer === undefined) notes.push(`job ${id} has no container`);
  else if (!container || (container.image !== undefined && !isLiteral(container.image)))
    notes.push(`job ${id}'s container image is not literal (\${{ }}): not taken`);
  else if (typeof container.image === "string" && container.image) {
    const envNotes: string[] = [];
    const env = {
      ...literalEnv(container.env, "container", envNotes),
      ...literalEnv(asObj(doc)?.env, "workflow", envNotes),
      ...literalEnv(job.env, "job", envNotes),
    };
    notes.push(...envNotes);
    const options: string[] = [];
    let workdir: string | undefined;
    if (container.options !== undefined) {
      if (!isLiteral(container.options)) {
        const literalPart = String(container.options)
          .split(/\s+/)
          .filter((w) => w && !EXPR.test(w))
          .join(" ");
        notes.push("container options hold expressions: those words are left out");
        container.options = literalPart;
      }
      const parsed = parseContainerOptions(String(container.options));
      Object.assign(env, parsed.env);
      if (parsed.shmSize) options.push(`--shm-size=${parsed.shmSize}`);
      if (parsed.workdir) workdir = parsed.workdir;
      if (parsed.refused.length)
        notes.push(
          `container options not taken (the worker provides cards, hugepages and mounts itself): ${parsed.refused.join(", ")}`,
        );
    }
    if (container.volumes !== undefined)
      notes.push("container volumes not taken: mounts come from the worker's settings");
    if (container.credentials !== undefined)
      notes.push("container credentials not taken: the worker pulls with its own");
    out.environment = {
      image: container.image,
      env,
      options,
      ...(workdir ? { workdir } : {}),
      notes: [],
    };
  }

  if (failedStep) {
    const steps = Array.isArray(job.steps) ? job.steps : [];
    const step = findStep(steps, failedStep);
    if (!step) notes.push(`the failed step "${failedStep}" is not a step of job ${id} (a set-up step?)`);
    else if (typeof step.run !== "string")
      notes.push(`the failed step "${failedStep}" runs an action, no command`);
    else {
      const timeout = isLiteral(step["timeout-minutes"])
        ? Number(step["timeout-minutes"])
        : isLiteral(job["timeout-minutes"])
          ? Number(job["timeout-minutes"])
          : undefined;
      const wd = step["working-directory"] ?? asObj(asObj(job.defaults)?.run)?.["working-directory"];
      out.command = {
        step: failedStep,
        run: step.run,
        ...(timeout !== undefined && Number.isFinite(timeout) && timeout > 0
          ? { timeoutMinutes: timeout }
          : {}),
        ...(typeof wd === "string" && !EXPR.test(wd) ? { workingDirectory: wd } : {}),
      };
      if (EXPR.test(step.run))
        notes.push(`the failed step's command holds expressions (\${{ }}): shown as written`);
    }
  }
  return out;
}
