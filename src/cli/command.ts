import type { Outcome } from "../contracts/outcome.js";

/** A CLI subcommand. Each lives in its own file under commands/ and is listed in main.ts. */
export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliCommand {
  /** Words that select it: ["validate"] or ["config", "check"]. */
  name: string[];
  usage: string;
  summary: string;
  /** Returns the exit code. */
  run: (args: string[], io: CliIO) => Promise<number>;
}

/** Exit codes shared by every subcommand (and by `autofix run`: 3 is a partial result). */
export const EXIT = { ok: 0, failed: 1, badInput: 2, partial: 3 } as const;

/** The exit code of a run that ended with `outcome`. */
export const OUTCOME_EXIT: Readonly<Record<Outcome, number>> = {
  succeeded: EXIT.ok,
  partial: EXIT.partial,
  failed: EXIT.failed,
  cancelled: EXIT.failed,
  timed_out: EXIT.failed,
};
