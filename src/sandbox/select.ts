import { environmentFor, type RepoConfig } from "../config/repo-config.js";
import type { FixJob, JobEnvironment } from "../contracts/fix-job.js";
import type { ExecutorKind } from "./executor.js";

/**
 * Which backend runs a job's commands. Pure: the caller probes the host (is bwrap installed,
 * does the engine answer) and acts on the decision.
 */

export type SandboxMode = "auto" | "container" | "bwrap" | "none";

export interface SandboxProbe {
  bwrap: { ok: boolean; detail: string };
  /** null when nobody asked (no image configured). */
  engine: { ok: boolean; detail: string } | null;
}

export type SandboxChoice =
  | { ok: true; kind: ExecutorKind; warning?: string; detail: string }
  | { ok: false; problem: string };

/** What `none` gives up, said wherever a job runs without a sandbox. */
export const NO_SANDBOX_WARNING =
  "no sandbox: the model's commands run on this host as the service's user and can read its files, its other processes and its network";

export function chooseSandbox(
  mode: SandboxMode,
  hasImage: boolean,
  probe: SandboxProbe,
  setting: { name: string; none: string },
): SandboxChoice {
  const engine = probe.engine;
  switch (mode) {
    case "none":
      return { ok: true, kind: "host", warning: NO_SANDBOX_WARNING, detail: `${setting.name} asks for none` };
    case "container":
      if (!hasImage)
        return { ok: false, problem: `${setting.name}=container needs an image (AUTOFIX_SANDBOX_IMAGE)` };
      if (!engine?.ok)
        return {
          ok: false,
          problem: `${setting.name}=container, but the container engine does not answer: ${engine?.detail ?? "not probed"}`,
        };
      return { ok: true, kind: "container", detail: engine.detail };
    case "bwrap":
      if (!probe.bwrap.ok)
        return {
          ok: false,
          problem: `${setting.name}=bwrap, but bubblewrap is not usable: ${probe.bwrap.detail}`,
        };
      return { ok: true, kind: "bwrap", detail: probe.bwrap.detail };
    case "auto":
      if (hasImage && engine?.ok) return { ok: true, kind: "container", detail: engine.detail };
      if (probe.bwrap.ok) return { ok: true, kind: "bwrap", detail: probe.bwrap.detail };
      return {
        ok: false,
        problem:
          `no sandbox for the model's commands: ${hasImage ? `the container engine does not answer (${engine?.detail ?? "not probed"}) and ` : ""}` +
          `bubblewrap is not usable (${probe.bwrap.detail}). Install bubblewrap, configure AUTOFIX_SANDBOX_IMAGE with a working engine, ` +
          `or run without a sandbox by asking for it by name: ${setting.none}`,
      };
  }
}

/** `pool=image,pool=image` into a map; malformed entries are reported. Pure. */
export function parsePoolImages(entries: readonly string[]): {
  images: Record<string, string>;
  problems: string[];
} {
  const images: Record<string, string> = {};
  const problems: string[] = [];
  for (const e of entries) {
    const i = e.indexOf("=");
    if (i <= 0 || i === e.length - 1) problems.push(`AUTOFIX_SANDBOX_POOL_IMAGES: "${e}" is not pool=image`);
    else images[e.slice(0, i)] = e.slice(i + 1);
  }
  return { images, problems };
}

/** The report's line for the backend that ran a job's commands. Pure. */
export function describeBackend(kind: ExecutorKind): string {
  switch (kind) {
    case "host":
      return `none: WARNING, ${NO_SANDBOX_WARNING}`;
    case "bwrap":
      return "bubblewrap (own PID, IPC, UTS, mount, user and network namespaces; only the workspace writable)";
    case "container":
      return "container (unprivileged, no capabilities, read-only root; only the workspace writable)";
  }
}

/** An operator-side mount from AUTOFIX_SANDBOX_MOUNTS. */
export interface SandboxMount {
  /** A pool name, or `*` for every pool. */
  pool: string;
  source: string;
  target: string;
  readOnly: boolean;
}

/** `pool:/host:/inside[:ro|:rw]` entries into mounts; malformed entries are reported. Pure. */
export function parseSandboxMounts(entries: readonly string[]): {
  mounts: SandboxMount[];
  problems: string[];
} {
  const mounts: SandboxMount[] = [];
  const problems: string[] = [];
  for (const e of entries) {
    const parts = e.split(":");
    const mode = parts.length === 4 ? parts[3] : parts.length === 3 ? "ro" : undefined;
    const [pool, source, target] = parts;
    if (
      !pool ||
      !source?.startsWith("/") ||
      !target?.startsWith("/") ||
      (mode !== "ro" && mode !== "rw") ||
      source.split("/").includes("..") ||
      target.split("/").includes("..")
    )
      problems.push(`AUTOFIX_SANDBOX_MOUNTS: "${e}" is not pool:/host/path:/container/path[:ro|:rw]`);
    else mounts.push({ pool, source, target, readOnly: mode === "ro" });
  }
  return { mounts, problems };
}

/** Does an image reference start with an allowed prefix, at a boundary (`ghcr.io/tenstorrent` never matches `ghcr.io/tenstorrent-x/`)? Pure. */
export function imageMatchesPrefix(image: string, prefix: string): boolean {
  if (!prefix || !image.startsWith(prefix)) return false;
  if (/[/:@]$/.test(prefix)) return image.length > prefix.length;
  const next = image[prefix.length];
  return next === undefined || next === "/" || next === ":" || next === "@";
}

/** What an image reference may hold: registry/name:tag@digest characters only. */
const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,299}$/;

export interface ImageDecision {
  image: string | undefined;
  /** Where the image came from, for the status comment and report. */
  source: string;
  notes: string[];
  /** The job's own image (to be pulled when missing) rather than a configured one. */
  requested: boolean;
}

/**
 * The image a job runs in: the one its environment asks for when the worker allows it (one of
 * the configured images, or under AUTOFIX_SANDBOX_IMAGE_PREFIXES), else the pool's configured
 * image, said why. A repository never picks an arbitrary image without the operator. Pure.
 */
export function chooseImage(
  environment: JobEnvironment | undefined,
  configured: { poolImage: string | undefined; allImages: readonly string[]; prefixes: readonly string[] },
): ImageDecision {
  const fallback = configured.poolImage;
  const notes = [...(environment?.notes ?? [])];
  const wanted = environment?.image;
  if (!wanted)
    return {
      image: fallback,
      source:
        environment?.source === "worker default" || !environment
          ? "worker default"
          : `worker default (${environment.source} names no image)`,
      notes,
      requested: false,
    };
  const wellFormed = IMAGE_REF.test(wanted) && !wanted.includes("..");
  const allowed =
    wellFormed &&
    (configured.allImages.includes(wanted) || configured.prefixes.some((p) => imageMatchesPrefix(wanted, p)));
  if (allowed) return { image: wanted, source: environment.source, notes, requested: wanted !== fallback };
  notes.push(
    `image ${wellFormed ? wanted : JSON.stringify(wanted.slice(0, 100))} (${environment.source}) is ${wellFormed ? "not allowed on this worker" : "not an image reference"} (AUTOFIX_SANDBOX_IMAGE_PREFIXES${
      configured.prefixes.length ? `: ${configured.prefixes.join(", ")}` : " is not set"
    }): ran the worker's image instead`,
  );
  return { image: fallback, source: "worker default", notes, requested: false };
}

/**
 * The environment a job asks for at run time: what its trigger recorded (a CI job's own
 * container), else the commit's autofix.yml `environment:` for its pool and runner labels,
 * else nothing (the worker's default). Pure.
 */
export function jobEnvironment(
  job: Pick<FixJob, "environment" | "ci">,
  config: RepoConfig | null,
  pool: string,
): JobEnvironment | undefined {
  if (job.environment && job.environment.source !== "worker default") return job.environment;
  const fromConfig = config ? environmentFor(config, pool, job.ci?.runnerLabels ?? []) : null;
  if (fromConfig) return { ...fromConfig, source: "autofix.yml", notes: job.environment?.notes ?? [] };
  return job.environment;
}
