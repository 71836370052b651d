import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { formatProblems, readSettings, redisEndpoint, type Settings } from "../../config/env.js";
import { createJobRunner } from "../../pipeline/job-runner.js";
import { checkRedis, displayRedisUrl } from "../../queue/redis.js";
import { createSandbox, sandboxSettingsOf } from "../../sandbox/factory.js";
import { createLogger, type Logger } from "../../shared/logger.js";
import { createAppGitHubFactory } from "../../worker/github.js";
import { decidePools, detectHardware, summarizeBoards } from "../../worker/hardware.js";
import { startWorker } from "../../worker/service.js";
import type { JobRunner } from "../../worker/types.js";
import { WorkspaceManager } from "../../worker/workspace.js";
import { type CliCommand, type CliIO, type CommandSpec, EXIT, parseCommand } from "../command.js";

export type RunnerLoader = (settings: Settings, logger: Logger) => Promise<JobRunner>;

/** The fix pipeline (logs, agent, push, draft PR, report); tests swap it through deps.loadRunner. */
export const loadPipelineRunner: RunnerLoader = async (settings, logger) => createJobRunner(settings, logger);

/** Wait for SIGTERM or SIGINT (replaceable in tests). */
export type StopSignal = () => Promise<string>;

const waitForSignal: StopSignal = () =>
  new Promise((resolvePromise) => {
    const on = (sig: string) => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolvePromise(sig);
    };
    process.once("SIGTERM", on);
    process.once("SIGINT", on);
  });

/** The worker's name (the same default startWorker uses): containers are labelled with it. */
const workerName = () => `${hostname()}:${process.pid}`;

const WORKER: CommandSpec = {
  usage: "autofix worker [--pool NAME ...] [--force]",
  summary: "serve hardware pools from the queue (detected from /dev/tenstorrent and tt-smi when no --pool)",
  options: {
    pool: {
      type: "string",
      multiple: true,
      value: "NAME",
      help: "a pool to serve (cpu, n150, n300, ...; comma-separated works too); default AUTOFIX_WORKER_POOLS, else detected",
    },
    force: { type: "boolean", help: "serve the pools asked for even when the cards found do not match them" },
  },
  notes: [
    "Stops on SIGTERM or Ctrl-C: running jobs get AUTOFIX_SHUTDOWN_DEADLINE_SECONDS to finish, then are requeued;",
    "a second signal aborts (and requeues) them at once. Exits 0 once stopped; 2 when it cannot start (Redis unreachable, bad settings).",
  ],
};

export function createWorkerCommand(
  deps: { loadRunner?: RunnerLoader; stop?: StopSignal; sandbox?: typeof createSandbox } = {},
): CliCommand {
  return {
    name: ["worker"],
    usage: WORKER.usage,
    summary: WORKER.summary,
    async run(args: string[], io: CliIO) {
      const parsed = parseCommand(WORKER, args, io);
      if (typeof parsed === "number") return parsed;
      const values = {
        pool: parsed.values.pool as string[] | undefined,
        force: parsed.values.force === true,
      };
      const env = io.env;
      // Every setting is read and every problem found now; the problems are reported after the
      // hardware check, which needs no secret (a malformed value stands at its default until then).
      const read = readSettings(env, "worker");
      const settings = read.settings;

      const hw = await detectHardware({ env, deviceDir: settings.AUTOFIX_DEVICE_DIR });
      const requested =
        values.pool && values.pool.length > 0
          ? values.pool.flatMap((p) => p.split(",")).filter(Boolean)
          : settings.AUTOFIX_WORKER_POOLS;
      const decision = decidePools(hw, requested, {
        force: !!values.force,
        cpuConcurrency: Math.floor(settings.AUTOFIX_CPU_CONCURRENCY),
      });
      io.out(
        `hardware: ${hw.devices.length} device node${hw.devices.length === 1 ? "" : "s"} in ${hw.deviceDir}; ` +
          (hw.boards
            ? `tt-smi: ${summarizeBoards(hw.boards)}`
            : hw.ttSmi
              ? `tt-smi failed: ${hw.ttSmiError}`
              : "tt-smi not on PATH"),
      );
      for (const n of decision.notes) io.out(`note: ${n}`);
      if (decision.refused.length > 0) {
        io.err("refusing to start:");
        for (const r of decision.refused) io.err(`  - ${r.reason}`);
        return EXIT.badInput;
      }
      if (decision.serve.length === 0) {
        io.err("no pool to serve");
        return EXIT.badInput;
      }

      // Every problem at once: the settings, the sandbox (every command of a job runs in one:
      // no sandbox, no worker, unless asked for none by name) and Redis (a worker that cannot
      // reach its queues says so and exits instead of retrying silently forever).
      const sandboxConfig = sandboxSettingsOf(settings);
      const [made, redisProblem] = await Promise.all([
        (deps.sandbox ?? createSandbox)(sandboxConfig.settings),
        read.problems.some((p) => p.startsWith("REDIS_")) ? null : checkRedis(redisEndpoint(settings)),
      ]);
      const problems = [
        ...read.problems,
        ...sandboxConfig.problems,
        ...(made.ok ? [] : [made.problem]),
        ...(redisProblem ? [`REDIS_URL ${displayRedisUrl(settings.REDIS_URL)}: ${redisProblem}`] : []),
      ];
      if (problems.length > 0 || !made.ok) {
        io.err(formatProblems("the worker cannot start", problems));
        return EXIT.badInput;
      }
      const sandbox = made.sandbox;
      io.out(`sandbox: ${sandbox.kind} (${sandbox.detail})`);
      if (sandbox.warning) io.err(`WARNING: ${sandbox.warning}`);
      const deadlineMs = settings.AUTOFIX_SHUTDOWN_DEADLINE_SECONDS * 1000;
      const logger = createLogger({ level: settings.LOG_LEVEL, name: "autofix-worker" });
      let runJob: JobRunner;
      try {
        runJob = await (deps.loadRunner ?? loadPipelineRunner)(settings, logger);
      } catch (err) {
        io.err(`the worker cannot start: ${(err as Error).message}`);
        return EXIT.failed;
      }
      const stale = await sandbox.cleanupStale(workerName()).catch((err: Error) => {
        logger.warn({ err: err.message }, "could not look for sandboxes a previous run left");
        return [];
      });
      if (stale.length > 0) logger.info({ removed: stale }, "removed sandboxes a previous run left");
      const running = await startWorker({
        name: workerName(),
        executors: sandbox.factory,
        redisUrl: redisEndpoint(settings),
        prefix: settings.AUTOFIX_QUEUE_PREFIX,
        plans: decision.serve,
        runJob,
        github: createAppGitHubFactory({
          appId: settings.APP_ID!,
          privateKey: settings.privateKey!,
          githubApiUrl: settings.githubApiUrl,
          logger,
        }),
        workspaces: new WorkspaceManager({
          workDir: resolve(io.cwd, settings.AUTOFIX_WORK_DIR),
          remote: settings.githubWebUrl,
          submodules: settings.AUTOFIX_SUBMODULES,
          lfs: settings.AUTOFIX_SUBMODULES,
          ...(settings.AUTOFIX_CACHE_DIR === "off"
            ? {}
            : {
                buildCache: {
                  root: resolve(
                    io.cwd,
                    settings.AUTOFIX_CACHE_DIR ?? join(settings.AUTOFIX_WORK_DIR, "caches"),
                  ),
                  maxSize: settings.AUTOFIX_CACHE_MAX_SIZE,
                  ...(settings.AUTOFIX_BUILD_TREE_REUSE.length > 0
                    ? { buildTreeDirs: settings.AUTOFIX_BUILD_TREE_REUSE }
                    : {}),
                  // As root, the sandbox's uid must write the cache it binds.
                  ...(process.getuid?.() === 0
                    ? { owner: { uid: settings.AUTOFIX_SANDBOX_UID, gid: settings.AUTOFIX_SANDBOX_GID } }
                    : {}),
                },
              }),
        }),
        logger,
        host: {
          deviceDir: hw.deviceDir,
          devices: hw.devices,
          ttSmi: hw.ttSmi,
          ...(settings.AUTOFIX_RESET_COMMAND ? { resetCommand: settings.AUTOFIX_RESET_COMMAND } : {}),
          env,
        },
        shutdownDeadlineMs: deadlineMs,
        jobTimeoutMs: settings.AUTOFIX_JOB_TIMEOUT_MINUTES * 60_000,
      });
      // Listening before saying "serving": a signal sent as soon as that line shows is handled.
      const stop = deps.stop ?? waitForSignal;
      const first = stop();
      io.out(
        `serving ${decision.serve.map((p) => `${p.pool} (x${p.concurrency})`).join(", ")} as ${running.name}`,
      );
      const sig = await first;
      io.out(
        `${sig}: finishing running jobs (up to ${deadlineMs / 1000} s), then requeueing them; send it again to stop them now`,
      );
      const done = running.shutdown();
      // A second signal does not wait for the deadline: running jobs are aborted (and requeued)
      // at once, their commands killed, and the worker exits once they are back in the queue.
      let finished = false;
      void stop().then((again) => {
        if (finished) return;
        const n = running.abortRunning();
        io.out(`${again} again: aborting ${n} running job${n === 1 ? "" : "s"} now`);
      });
      await done;
      finished = true;
      return EXIT.ok;
    },
  };
}

export const workerCommand = createWorkerCommand();
