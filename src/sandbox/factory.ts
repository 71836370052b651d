import type { Settings } from "../config/env.js";
import { bwrapAvailable, bwrapExecutorFactory, removeStaleSandboxes } from "./bwrap.js";
import { prepareWorkspaceOwnership } from "./common.js";
import {
  type ContainerEngineOptions,
  containerExecutorFactory,
  engineAvailable,
  ensureImage,
  removeStaleContainers,
} from "./container.js";
import type { ExecutorFactory, ExecutorKind, ExecutorSpec, JobExecutor } from "./executor.js";
import { hostExecutorFactory, removeStaleHostCommands } from "./host.js";
import {
  chooseImage,
  chooseSandbox,
  parsePoolImages,
  parseSandboxMounts,
  type SandboxMode,
  type SandboxMount,
  type SandboxProbe,
} from "./select.js";

/**
 * The job sandbox a worker or `autofix run` uses: probe the host, choose the backend
 * (select.ts), and build the executor factory with the host's settings. Every executor it
 * makes gets a workspace the sandbox's uid owns (when the service runs as root), only the
 * job's cards, the read-only object store its repository borrows, no network unless the job's
 * repository is on the allowlist, and the per-pool image.
 */

export interface SandboxSettings {
  mode: SandboxMode;
  image?: string;
  poolImages: Record<string, string>;
  engine: ContainerEngineOptions & { runArgs?: string[] };
  uid: number;
  gid: number;
  /** owner/name of repositories whose jobs may use the network. */
  networkRepos: string[];
  deviceDir: string;
  /** Image prefixes a job's environment may pick (AUTOFIX_SANDBOX_IMAGE_PREFIXES); none: only the configured images. */
  imagePrefixes?: string[];
  /** Operator-side mounts per pool (AUTOFIX_SANDBOX_MOUNTS). */
  mounts?: SandboxMount[];
  /** The setting's name and the way to ask for no sandbox, for messages. */
  setting: { name: string; none: string };
}

export interface Sandbox {
  kind: ExecutorKind;
  /** What runs the commands (the probe's answer), for logs and reports. */
  detail: string;
  /** Set when the commands are not sandboxed: say it in the output, the comment and the report. */
  warning?: string;
  factory: ExecutorFactory;
  /** Remove what a crashed predecessor left (containers, bubblewrap sandboxes); returns what was removed. */
  cleanupStale(workerName: string): Promise<string[]>;
}

export type SandboxResult = { ok: true; sandbox: Sandbox } | { ok: false; problem: string };

export async function probeSandbox(s: SandboxSettings): Promise<SandboxProbe> {
  const hasImage = !!s.image || Object.keys(s.poolImages).length > 0;
  const wantEngine = s.mode === "container" || (s.mode === "auto" && hasImage);
  const [bwrap, engine] = await Promise.all([
    s.mode === "container" ? Promise.resolve({ ok: false, detail: "not asked for" }) : bwrapAvailable(),
    wantEngine ? engineAvailable(s.engine) : Promise.resolve(null),
  ]);
  return { bwrap, engine };
}

export async function createSandbox(s: SandboxSettings, probe?: SandboxProbe): Promise<SandboxResult> {
  const hasImage = !!s.image || Object.keys(s.poolImages).length > 0;
  const choice = chooseSandbox(s.mode, hasImage, probe ?? (await probeSandbox(s)), s.setting);
  if (!choice.ok) return choice;
  const asRoot = process.getuid?.() === 0;
  const own = async (dir: string) => {
    if (asRoot) await prepareWorkspaceOwnership(dir, s.uid, s.gid);
  };
  const netFor = (repo?: string) =>
    !!repo && s.networkRepos.some((r) => r.toLowerCase() === repo.toLowerCase());
  let factory: ExecutorFactory;
  if (choice.kind === "container") {
    factory = async (spec) => {
      const env = spec.environment;
      const decision = chooseImage(env, {
        poolImage: (spec.pool ? s.poolImages[spec.pool] : undefined) ?? s.image,
        allImages: [...(s.image ? [s.image] : []), ...Object.values(s.poolImages)],
        prefixes: s.imagePrefixes ?? [],
      });
      // The job's own image is pulled beforehand (a CI image is large); one that cannot be had falls back.
      if (decision.requested && decision.image) {
        const have = await ensureImage(s.engine, decision.image);
        if (!have.ok) {
          decision.notes.push(
            `could not pull ${decision.image}: ${have.detail}; ran the worker's image instead`,
          );
          decision.image = (spec.pool ? s.poolImages[spec.pool] : undefined) ?? s.image;
          decision.source = "worker default";
          decision.requested = false;
        }
      }
      const image = decision.image;
      if (!image)
        throw new Error(`no container image for pool ${spec.pool ?? "(none)"}: set AUTOFIX_SANDBOX_IMAGE`);
      // The environment's env, options and workdir go with its image: CI's paths, CI's variables.
      const fromJob = decision.source !== "worker default" ? env : undefined;
      const shm = fromJob?.options.map((o) => /^--shm-size=(.+)$/.exec(o)?.[1]).find(Boolean);
      await own(spec.workspace);
      return containerExecutorFactory({
        engine: s.engine,
        image,
        uid: s.uid,
        gid: s.gid,
        deviceDir: s.deviceDir,
        network: netFor(spec.repository),
        readOnlyBinds: spec.readOnlyPaths ?? [],
        binds: (s.mounts ?? []).filter((m) => m.pool === "*" || m.pool === spec.pool),
        ...(fromJob?.workdir ? { mountPath: fromJob.workdir } : {}),
        ...(fromJob && Object.keys(fromJob.env).length ? { extraEnv: fromJob.env } : {}),
        ...(shm ? { shmSize: shm } : {}),
        ...(s.engine.runArgs ? { runArgs: s.engine.runArgs } : {}),
        details: {
          image: `${image} (${decision.source})`,
          ...(fromJob?.workdir ? { workdir: fromJob.workdir } : {}),
          ...(decision.notes.length ? { "environment notes": decision.notes.join("; ") } : {}),
        },
      })(spec);
    };
  } else if (choice.kind === "bwrap") {
    factory = async (spec) => {
      await own(spec.workspace);
      return withoutImage(
        await bwrapExecutorFactory({
          uid: s.uid,
          gid: s.gid,
          deviceDir: s.deviceDir,
          network: netFor(spec.repository),
          readOnlyBinds: spec.readOnlyPaths ?? [],
        })(spec),
        spec,
      );
    };
  } else {
    const host = hostExecutorFactory();
    factory = async (spec) => withoutImage(await host(spec), spec);
  }
  return {
    ok: true,
    sandbox: {
      kind: choice.kind,
      detail: choice.detail,
      ...(choice.warning ? { warning: choice.warning } : {}),
      factory,
      cleanupStale: async (workerName) =>
        choice.kind === "container"
          ? removeStaleContainers(s.engine, workerName)
          : choice.kind === "bwrap"
            ? (await removeStaleSandboxes()).map((pid) => `bwrap sandbox pid ${pid}`)
            : (await removeStaleHostCommands()).map((pid) => `host command pid ${pid}`),
    },
  };
}

/** The sandbox settings of a worker from the service settings (see src/config/env.ts). */
export function sandboxSettingsOf(
  settings: Pick<
    Settings,
    | "AUTOFIX_SANDBOX"
    | "AUTOFIX_SANDBOX_IMAGE"
    | "AUTOFIX_SANDBOX_POOL_IMAGES"
    | "AUTOFIX_CONTAINER_ENGINE"
    | "AUTOFIX_CONTAINER_GLOBAL_ARGS"
    | "AUTOFIX_CONTAINER_RUN_ARGS"
    | "AUTOFIX_SANDBOX_UID"
    | "AUTOFIX_SANDBOX_GID"
    | "AUTOFIX_SANDBOX_NETWORK_REPOS"
    | "AUTOFIX_DEVICE_DIR"
  > &
    Partial<Pick<Settings, "AUTOFIX_SANDBOX_IMAGE_PREFIXES" | "AUTOFIX_SANDBOX_MOUNTS">>,
  setting = { name: "AUTOFIX_SANDBOX", none: "AUTOFIX_SANDBOX=none" },
): { settings: SandboxSettings; problems: string[] } {
  const { images, problems: imageProblems } = parsePoolImages(settings.AUTOFIX_SANDBOX_POOL_IMAGES);
  const { mounts, problems: mountProblems } = parseSandboxMounts(settings.AUTOFIX_SANDBOX_MOUNTS ?? []);
  const problems = [...imageProblems, ...mountProblems];
  const words = (s: string | undefined) => (s === undefined ? undefined : s.split(/\s+/).filter(Boolean));
  const globalArgs = words(settings.AUTOFIX_CONTAINER_GLOBAL_ARGS);
  const runArgs = words(settings.AUTOFIX_CONTAINER_RUN_ARGS);
  return {
    settings: {
      mode: settings.AUTOFIX_SANDBOX,
      ...(settings.AUTOFIX_SANDBOX_IMAGE ? { image: settings.AUTOFIX_SANDBOX_IMAGE } : {}),
      poolImages: images,
      engine: {
        binary: settings.AUTOFIX_CONTAINER_ENGINE,
        ...(globalArgs ? { globalArgs } : {}),
        ...(runArgs ? { runArgs } : {}),
      },
      uid: settings.AUTOFIX_SANDBOX_UID,
      gid: settings.AUTOFIX_SANDBOX_GID,
      networkRepos: settings.AUTOFIX_SANDBOX_NETWORK_REPOS,
      deviceDir: settings.AUTOFIX_DEVICE_DIR,
      imagePrefixes: settings.AUTOFIX_SANDBOX_IMAGE_PREFIXES ?? [],
      mounts,
      setting,
    },
    problems,
  };
}

/** A backend without images says so when the job's environment names one. */
function withoutImage(exec: JobExecutor, spec: ExecutorSpec): JobExecutor {
  const e = spec.environment;
  if (!e?.image) return exec;
  return {
    ...exec,
    details: {
      image: `none: the ${exec.kind} backend ran the commands; ${e.image} (${e.source}) needs the container backend (AUTOFIX_SANDBOX_IMAGE)`,
    },
  };
}
