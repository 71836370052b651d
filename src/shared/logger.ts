import pino, { type Logger } from "pino";
import { redactor } from "./redact.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: pino.DestinationStream;
}

/**
 * The one logger. Every message and every structured field passes through the redactor, so a
 * token that ends up in an error message or an Octokit request log never reaches the output.
 * The same instance is handed to Probot, so its request logs are redacted too.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      name: opts.name ?? "autofix",
      level: opts.level ?? process.env.LOG_LEVEL ?? "info",
      formatters: {
        log: (obj) => redactor.redactDeep(obj as Record<string, unknown>),
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((a) => (typeof a === "string" ? redactor.redact(a) : a));
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (err: unknown) => redactor.redactDeep(pino.stdSerializers.err(err as Error)),
      },
    },
    opts.destination ?? pino.destination({ sync: false }),
  );
}
