import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import {
  ActionsUrlError,
  describeRef,
  type FetchLike,
  fetchJobLogs,
  fetchRunFailures,
  groupByFingerprint,
  type JobFailure,
  type LogSource,
  parseActionsUrl,
  renderFailure,
  renderGroups,
  triageStream,
} from "../../logs/index.js";
import { redact, redactor } from "../../shared/redact.js";
import { type CliCommand, type CommandSpec, EXIT, parseCommand, usageError } from "../command.js";

export interface LogsCommandDeps {
  /** Standard input for `-` (defaults to process.stdin). */
  stdin?: () => LogSource;
  /** HTTP client for GitHub (defaults to the global fetch). */
  fetch?: FetchLike;
}

const USAGE = "autofix logs <actions-url | file | ->... [--json] [--budget BYTES]";
const SPEC: CommandSpec = {
  usage: USAGE,
  summary:
    "fetch and triage CI logs: failing tests, error class, fingerprint and the lines that matter; several logs are grouped by fingerprint",
  options: {
    json: { type: "boolean", help: "print the triage as JSON" },
    budget: {
      type: "string",
      value: "BYTES",
      help: "the size of each excerpt (at least 256; default 12288)",
    },
  },
  positionals: [1, Number.POSITIVE_INFINITY],
  missing: "give an Actions run or job URL, a log file, or - for standard input",
  notes: [
    "A URL needs GITHUB_TOKEN or GH_TOKEN (read access to the repository's Actions).",
    "Exit 0 when every log was read, 1 when one could not be.",
  ],
};

export function createLogsCommand(deps: LogsCommandDeps = {}): CliCommand {
  return {
    name: ["logs"],
    usage: USAGE,
    summary: SPEC.summary,
    async run(args, io) {
      const parsed = parseCommand(SPEC, args, io);
      if (typeof parsed === "number") return parsed;
      const inputs = parsed.positionals;
      const json = parsed.values.json === true;
      let budget: number | undefined;
      if (parsed.values.budget !== undefined) {
        budget = Number(parsed.values.budget);
        if (!Number.isInteger(budget) || budget < 256)
          return usageError(SPEC, io, "--budget must be a whole number of bytes, at least 256");
      }
      const opts = budget ? { excerptBudget: budget } : {};

      // Validate every input before fetching anything.
      const urls = new Map<string, ReturnType<typeof parseActionsUrl>>();
      for (const input of inputs) {
        if (!/^https?:\/\//i.test(input)) continue;
        try {
          urls.set(input, parseActionsUrl(input));
        } catch (err) {
          if (err instanceof ActionsUrlError) {
            io.err(redact(err.message));
            return EXIT.badInput;
          }
          throw err;
        }
      }
      const token = io.env.GITHUB_TOKEN || io.env.GH_TOKEN;
      if (urls.size > 0 && !token) {
        io.err(
          "autofix logs: reading logs from GitHub needs a token: set GITHUB_TOKEN or GH_TOKEN " +
            '(read access to the repository\'s Actions, e.g. GH_TOKEN="$(gh auth token)"), ' +
            "or pass a downloaded log file instead",
        );
        return EXIT.badInput;
      }
      if (token) redactor.addSecret(token);
      const access = { token: token ?? "", ...(deps.fetch ? { fetch: deps.fetch } : {}) };

      const failures: JobFailure[] = [];
      let errors = 0;
      for (const input of inputs) {
        try {
          const ref = urls.get(input);
          if (ref?.kind === "job") {
            failures.push(await fetchJobLogs(ref, ref.jobId, access, opts));
          } else if (ref?.kind === "run") {
            const run = await fetchRunFailures(ref, access, opts);
            const others = Object.entries(run.otherJobs)
              .map(([k, n]) => `${k} ${n}`)
              .join(", ");
            if (!json) {
              io.out(
                `${describeRef(ref)}: attempt ${run.attempt}, ${run.failures.length} failed job${run.failures.length === 1 ? "" : "s"}${others ? ` (others: ${others})` : ""}`,
              );
            }
            failures.push(...run.failures);
          } else if (input === "-") {
            const source = deps.stdin ? deps.stdin() : process.stdin;
            failures.push({
              label: "stdin",
              job: null,
              annotations: [],
              triage: await triageStream(source, opts),
            });
          } else {
            const file = resolve(io.cwd, input);
            await stat(file);
            const triage = await triageStream(createReadStream(file), opts);
            failures.push({ label: input, job: null, annotations: [], triage });
          }
        } catch (err) {
          errors++;
          const e = err as NodeJS.ErrnoException;
          io.err(redact(`autofix logs: ${input}: ${e.code === "ENOENT" ? "no such file" : e.message}`));
        }
      }

      const groups = groupByFingerprint(failures);
      if (json) {
        io.out(
          redact(
            JSON.stringify(
              {
                results: failures.map((f) => ({
                  source: f.label,
                  job: f.job,
                  failingTests: f.triage.failingTests,
                  errorClass: f.triage.errorClass,
                  family: f.triage.family,
                  fingerprint: f.triage.fingerprint,
                  signature: f.triage.signature,
                  primary: f.triage.primary,
                  annotations: f.annotations,
                  excerpt: f.triage.excerpt,
                })),
                groups,
              },
              null,
              2,
            ),
          ),
        );
      } else {
        for (const f of failures) io.out(redact(renderFailure(f)));
        if (failures.length > 1) io.out(redact(renderGroups(groups)));
      }
      return errors > 0 ? EXIT.failed : EXIT.ok;
    },
  };
}

export const logsCommand = createLogsCommand();
