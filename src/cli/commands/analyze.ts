import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { DEFAULT_MODEL } from "../../config/env.js";
import {
  type AnalysisModel,
  analyzeJobs,
  collectJobs,
  renderAnalysisSvg,
  renderAnalysisTable,
  writtenAnalysis,
} from "../../logs/analysis.js";
import {
  type ActionsRef,
  ActionsUrlError,
  describeRef,
  type FetchLike,
  parseActionsUrl,
} from "../../logs/index.js";
import { redact, redactor } from "../../shared/redact.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand, usageError } from "../command.js";

export interface AnalyzeCommandDeps {
  /** HTTP client for GitHub (defaults to the global fetch). */
  fetch?: FetchLike;
  /** The model client for --model; the SDK reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL. */
  client?: () => AnalysisModel;
}

const USAGE = "autofix analyze <run or job URL>... [--svg FILE] [--json] [--model]";
const SPEC: CommandSpec = {
  usage: USAGE,
  summary:
    "failure analysis across runs: fetch and triage every job (every attempt) of the runs, then per fingerprint the failure rate, first and last seen, runner hosts and SKUs, attempts that passed on retry and test ids",
  options: {
    svg: { type: "string", value: "FILE", help: "also write a bar chart of the failure rates as SVG" },
    json: { type: "boolean", help: "print the figures as JSON instead of the Markdown table" },
    model: {
      type: "boolean",
      help: "ask the model (AUTOFIX_MODEL) for a written analysis: failure summary, code path, root cause, recommended fix",
    },
  },
  positionals: [1, Number.POSITIVE_INFINITY],
  missing: "give one or more Actions run or job URLs",
  notes: [
    "Needs GITHUB_TOKEN or GH_TOKEN (read access to the repository's Actions); --model needs ANTHROPIC_API_KEY.",
    "The logs reach the model redacted and fenced as untrusted data.",
    "Exit 0 when every link was read, 1 when one could not be, 2 on bad input.",
  ],
};

export function createAnalyzeCommand(deps: AnalyzeCommandDeps = {}): CliCommand {
  return {
    name: ["analyze"],
    usage: USAGE,
    summary: SPEC.summary,
    async run(args, io) {
      const parsed = parseCommand(SPEC, args, io);
      if (typeof parsed === "number") return parsed;
      const refs: ActionsRef[] = [];
      for (const input of parsed.positionals) {
        try {
          refs.push(parseActionsUrl(input));
        } catch (err) {
          if (err instanceof ActionsUrlError) return usageError(SPEC, io, redact(err.message));
          throw err;
        }
      }
      const token = io.env.GITHUB_TOKEN || io.env.GH_TOKEN;
      const problems: string[] = [];
      if (!token)
        problems.push(
          'reading runs from GitHub needs a token: set GITHUB_TOKEN or GH_TOKEN (e.g. GH_TOKEN="$(gh auth token)")',
        );
      const wantModel = parsed.values.model === true;
      if (wantModel && !io.env.ANTHROPIC_API_KEY && !io.env.ANTHROPIC_AUTH_TOKEN)
        problems.push("--model needs ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL for a proxy and its key)");
      if (problems.length) {
        for (const p of problems) io.err(`autofix analyze: ${p}`);
        return EXIT.badInput;
      }
      redactor.addSecret(token!);
      const access = { token: token!, ...(deps.fetch ? { fetch: deps.fetch } : {}) };

      let errors = 0;
      const jobs = [];
      for (const ref of refs) {
        try {
          jobs.push(...(await collectJobs([ref], access)));
        } catch (err) {
          errors++;
          io.err(redact(`autofix analyze: ${describeRef(ref)}: ${(err as Error).message}`));
        }
      }
      const analysis = analyzeJobs(jobs);
      if (parsed.values.json === true) {
        const { fingerprints, ...totals } = analysis;
        io.out(
          redact(
            JSON.stringify(
              { ...totals, fingerprints: fingerprints.map(({ excerpt: _e, ...rest }) => rest) },
              null,
              2,
            ),
          ),
        );
      } else {
        io.out(renderAnalysisTable(analysis));
      }
      if (typeof parsed.values.svg === "string") {
        const file = resolve(io.cwd, parsed.values.svg);
        try {
          await writeFile(file, renderAnalysisSvg(analysis));
          io.err(`chart written to ${file}`);
        } catch (err) {
          errors++;
          io.err(`autofix analyze: cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
        }
      }
      if (wantModel && analysis.fingerprints.length > 0) {
        const model = io.env.AUTOFIX_MODEL?.trim() || DEFAULT_MODEL;
        const client = deps.client ? deps.client() : (new Anthropic() as unknown as AnalysisModel);
        try {
          const text = await writtenAnalysis(analysis, client, { model });
          io.out("");
          io.out(`## Written analysis (${model}; the figures above are computed, this text is the model's)`);
          io.out("");
          io.out(text);
        } catch (err) {
          errors++;
          io.err(redact(`autofix analyze: the model could not be asked: ${(err as Error).message}`));
        }
      }
      return errors > 0 ? EXIT.failed : EXIT.ok;
    },
  };
}

export const analyzeCommand = createAnalyzeCommand();
