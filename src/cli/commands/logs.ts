import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
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
import { type CliCommand, EXIT } from "../command.js";

export interface LogsCommandDeps {
  /** Standard input for `-` (defaults to process.stdin). */
  stdin?: () => LogSource;
  /** HTTP client for GitHub (defaults to the global fetch). */
  fetch?: FetchLike;
}

const USAGE = "autofix logs <actions-url | file | ->... [--json] [--budget BYTES]";

export function createLogsCommand(deps: LogsCommandDeps = {}): CliCommand {
  return {
    name: ["logs"],
    usage: USAGE,
    summary:
      "fetch and triage CI logs: failing tests, error class, fingerprint and the lines that matter; several logs are grouped by fingerprint",
    async run(args, io) {
      let parsed: ReturnType<typeof parse>;
      try {
        parsed = parse(args);
      } catch (err) {
        io.err(`${(err as Error).message}\nusage: ${USAGE}`);
        return EXIT.badInput;
      }
      const { inputs, json, budget } = parsed;
      if (inputs.length === 0) {
        io.err(`usage: ${USAGE}`);
        return EXIT.badInput;
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

function parse(args: string[]) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: "boolean", default: false }, budget: { type: "string" } },
  });
  let budget: number | undefined;
  if (values.budget !== undefined) {
    budget = Number(values.budget);
    if (!Number.isInteger(budget) || budget < 256)
      throw new Error("--budget must be a whole number of bytes, at least 256");
  }
  return { inputs: positionals, json: values.json === true, budget };
}

export const logsCommand = createLogsCommand();
