import { createRequire } from "node:module";
import pino, { type Logger } from "pino";
import { redactor } from "./redact.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: pino.DestinationStream;
  /**
   * One readable line per message (Probot's pretty format) instead of JSON. Default: see
   * wantsPrettyLogs; never when a destination is given, unless asked.
   */
  pretty?: boolean;
}

/**
 * Whether logs are for a person: LOG_FORMAT=json or pretty decides; otherwise pretty when stdout
 * is a terminal and NODE_ENV is not production (a service's logs, piped to journald or a
 * container runtime, stay JSON).
 */
export function wantsPrettyLogs(
  env: NodeJS.ProcessEnv = process.env,
  isTTY = process.stdout.isTTY === true,
): boolean {
  const format = env.LOG_FORMAT?.trim().toLowerCase();
  if (format === "json") return false;
  if (format === "pretty") return true;
  return isTTY && env.NODE_ENV !== "production";
}

/** The keys a pretty line leaves out: pino's pid and host, and pino-http's request and response (every header). */
const PRETTY_IGNORE = "pid,hostname,req,res,responseTime";

type PrettyFactory = (opts: Record<string, unknown>) => pino.DestinationStream;

/**
 * pino-pretty, the formatter Probot's own logger uses (a dependency of Probot's @probot/pino, so
 * it is installed with Probot); null when it cannot be loaded, and the logs stay JSON.
 */
function prettyStream(
  destination: pino.DestinationStream | undefined,
  colorize: boolean,
): pino.DestinationStream | null {
  try {
    const require = createRequire(import.meta.url);
    const mod = require("pino-pretty") as PrettyFactory | { default: PrettyFactory };
    const build = typeof mod === "function" ? mod : mod.default;
    return build({
      colorize,
      ignore: PRETTY_IGNORE,
      errorProps: "event,status,headers,request",
      translateTime: "SYS:HH:MM:ss",
      destination: destination ?? 1,
      sync: destination !== undefined,
    });
  } catch {
    return null;
  }
}

/**
 * The one logger. Every message and every structured field passes through the redactor, so a
 * token that ends up in an error message or an Octokit request log never reaches the output.
 * The same instance is handed to Probot, so its request logs are redacted too.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const pretty = opts.pretty ?? (opts.destination === undefined && wantsPrettyLogs());
  const stream =
    (pretty
      ? prettyStream(opts.destination, opts.destination === undefined && process.stdout.isTTY === true)
      : null) ??
    opts.destination ??
    pino.destination({ sync: false });
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
    stream,
  );
}
