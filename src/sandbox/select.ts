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
