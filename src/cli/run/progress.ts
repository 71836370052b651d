import type { PhaseName, ProgressEvent } from "../../agent/index.js";
import { modelWaitMessage } from "../../agent/spend.js";
import { redact } from "../../shared/redact.js";

/**
 * What `autofix run` prints while it runs: the plan before the agent starts, then one line per
 * progress event, each prefixed with the time since the start on the run's clock.
 */

/** `[mm:ss]`, or `[h:mm:ss]` past an hour. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const mm = String(Math.floor(s / 60) % 60).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `[${Math.floor(s / 3600)}:${mm}:${ss}]` : `[${mm}:${ss}]`;
}

export function formatTokens(n: number): string {
  if (n < 1000) return String(n);
  if (n < 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (n < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}

export function formatCost(usd: number): string {
  return `$${usd < 0.1 && usd > 0 ? usd.toFixed(3) : usd.toFixed(2)}`;
}

/** The run's start on `now` (the injected clock) and the milliseconds since then. */
export function startClock(now: () => Date): { startedAt: Date; elapsed: () => number } {
  const startedAt = now();
  return { startedAt, elapsed: () => now().getTime() - startedAt.getTime() };
}

/** What the run is about to do, for the lines before the agent starts. */
export interface StartInfo {
  prompt: string;
  repo: string;
  baseRef: string;
  baseSha: string;
  /** The gates' wording (describeGates). */
  failure: string;
  url: string | undefined;
  existingTestPath: string | undefined;
  model: string;
  /** Where the model's commands run (describeBackend). */
  sandbox: string;
  branch: { name: string; reused: boolean };
  /** Where the fix would be published; null: nowhere (no token). */
  publish: { remoteUrl: string; owner: string; repo: string; baseBranch: string } | null;
  dryRun: boolean;
  outDir: string;
}

/** The lines printed before the agent starts (unredacted; the caller redacts). */
export function startLines(s: StartInfo): string[] {
  const p = s.publish;
  return [
    `autofix run: ${s.prompt.split("\n")[0]}`,
    `  repository: ${s.repo} (base ${s.baseRef} = ${s.baseSha.slice(0, 12)}; worked on in a temporary copy)`,
    `  failure:    ${s.failure}`,
    `  logs:       ${s.url ?? "raw-logs from the info.json"}`,
    `  test:       ${s.existingTestPath ? `existing ${s.existingTestPath} (phase 1 writes none)` : "written in phase 1"}`,
    `  model:      ${s.model}`,
    `  sandbox:    ${s.sandbox}`,
    `  fix branch: ${s.branch.name}${s.branch.reused ? " (the branch of an earlier run: updated)" : ""}`,
    `  publish:    ${
      !p
        ? "nothing: no GITHUB_TOKEN or GH_TOKEN, everything stays local"
        : `${s.dryRun ? "dry run: would push" : "push"} ${s.branch.name} to origin (${p.remoteUrl}) and open a draft PR on ${p.owner}/${p.repo} against ${p.baseBranch}`
    }`,
    `  report:     ${s.outDir}`,
    "",
  ];
}

/**
 * Agent progress as terminal lines, each prefixed with the elapsed time: phase started (with
 * its budget), each turn with the spend so far, each gate run and verdict, phase ended.
 */
export class ProgressPrinter {
  #spend: { tokens: number; cost: number } | null = null;
  #turn = 0;

  constructor(
    private readonly out: (line: string) => void,
    private readonly elapsed: () => number,
    private readonly gateRuns: { reproduce: number; fix: number },
  ) {}

  line(text: string): void {
    this.out(redact(`${formatElapsed(this.elapsed())} ${text}`));
  }

  #spendSuffix(): string {
    return this.#spend
      ? ` · ${formatTokens(this.#spend.tokens)} tokens · ${formatCost(this.#spend.cost)}`
      : "";
  }

  #gateTotal(phase: PhaseName): number {
    return phase === "fix" ? this.gateRuns.fix : this.gateRuns.reproduce;
  }

  apply(e: ProgressEvent): void {
    switch (e.type) {
      case "phase_started":
        this.line(
          e.phase === "build"
            ? `build: started · budget ${e.budget.minutes} min`
            : `${e.phase}: started · budget ${e.budget.minutes} min, ${e.budget.turns} turns`,
        );
        break;
      case "turn":
        this.#turn = e.turn;
        break;
      case "spend":
        this.#spend = { tokens: e.total.inputTokens + e.total.outputTokens, cost: e.total.costUsd };
        this.line(`${e.phase}: model turn ${this.#turn}${this.#spendSuffix()}`);
        break;
      case "gate_run": {
        const r = e.run;
        const how = r.timedOut
          ? "timed out"
          : r.exitCode === null
            ? `killed by ${r.signal ?? "a signal"}`
            : `exit ${r.exitCode}`;
        const where = e.phase === "fix" ? "with the fix" : "on the base commit";
        this.line(
          `${e.phase}: run ${r.run}/${this.#gateTotal(e.phase)} ${where} ${r.passed ? "passed" : "failed"} (${how}, ${(r.durationMs / 1000).toFixed(1)} s)${this.#spendSuffix()}`,
        );
        break;
      }
      case "model_wait":
        this.line(`${e.phase}: ${modelWaitMessage(e)}: ${e.error}`);
        break;
      case "gate_result":
        this.line(`${e.phase}: gate ${e.result.passed ? "passed" : "refused"}: ${e.result.reason}`);
        break;
      case "phase_ended": {
        const o = e.outcome;
        const reason = o.reason.length > 200 ? `${o.reason.slice(0, 197)}...` : o.reason;
        this.line(
          `${e.phase}: ${o.status.replace("_", " ")}: ${reason}${e.phase === "build" ? "" : ` · ${o.turns} turns`}${this.#spendSuffix()}`,
        );
        break;
      }
      default:
        break;
    }
  }
}
