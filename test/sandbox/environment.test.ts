import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseContainerOptions } from "../../src/config/container-options.js";
import { DEFAULT_REPO_CONFIG, environmentFor, parseRepoConfig } from "../../src/config/repo-config.js";
import type { JobEnvironment } from "../../src/contracts/fix-job.js";
import { engineCommand } from "../../src/sandbox/container.js";
import type { JobExecutor } from "../../src/sandbox/executor.js";
import { createSandbox, type SandboxSettings, sandboxSettingsOf } from "../../src/sandbox/factory.js";
import { buildHostImage, removeHostImage } from "../../src/sandbox/host-image.js";
import {
  chooseImage,
  imageMatchesPrefix,
  jobEnvironment,
  parseSandboxMounts,
} from "../../src/sandbox/select.js";
import { runHostCommand } from "../../src/shared/process.js";
import { backendBinary, type Fixture, makeFixture } from "./helpers.js";

const HOSTILE_OPTIONS = [
  "--privileged",
  "--cap-add SYS_ADMIN",
  "--cap-add=ALL",
  "-v /:/host",
  "--volume=/etc:/etc",
  "--mount type=bind,source=/,target=/host",
  "--device /dev/sda",
  "--device=/dev/tenstorrent",
  "--network host",
  "--net=host",
  "--pid host",
  "--ipc=host",
  "--userns=host",
  "--security-opt seccomp=unconfined",
  "--user 0",
  "--entrypoint /bin/sh",
  "--shm-size 2g --privileged",
  "-e A=1 --cap-add NET_ADMIN",
];

describe("autofix.yml environment: a repository cannot widen the sandbox", () => {
  for (const opt of HOSTILE_OPTIONS) {
    it(`refuses options: ${opt}`, () => {
      for (const options of [opt, [opt]]) {
        const r = parseRepoConfig(
          `environment:\n  pools:\n    n150:\n      options: ${JSON.stringify(options)}\n`,
        );
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.errors.join("\n")).toMatch(/environment\.pools\.n150\.options.*refused/);
      }
      const top = parseRepoConfig(`environment:\n  options: ${JSON.stringify(opt)}\n`);
      expect(top.ok).toBe(false);
    });
  }

  it("refuses mounts and volumes from the repository, and workdirs over system folders", () => {
    for (const text of [
      "environment:\n  mounts: ['/srv/models:/models']\n",
      "environment:\n  volumes: ['/:/host']\n",
      "environment:\n  runner_labels:\n    - labels: [N300]\n      mounts: ['/:/host']\n",
      "environment:\n  workdir: /etc\n",
      "environment:\n  workdir: /work/../proc\n",
      "environment:\n  workdir: work\n",
      "environment:\n  workdir: /\n",
    ]) {
      const r = parseRepoConfig(text);
      expect(r.ok, text).toBe(false);
    }
    const r = parseRepoConfig("environment:\n  mounts: ['/srv:/srv']\n");
    if (!r.ok) expect(r.errors.join("\n")).toContain("AUTOFIX_SANDBOX_MOUNTS");
  });

  it("takes the allowed options and merges base < pool < runner label", () => {
    const r = parseRepoConfig(
      [
        "environment:",
        "  image: ghcr.io/tenstorrent/tt-metal/tt-metalium/ubuntu-22.04-ci-test-amd64:latest",
        "  workdir: /work",
        "  options: --shm-size 2g",
        "  env: { TT_METAL_HOME: /work, LOGURU_LEVEL: INFO }",
        "  pools:",
        "    n150: { env: { ARCH_NAME: wormhole_b0 } }",
        "  runner_labels:",
        "    - labels: [P150]",
        "      env: { ARCH_NAME: blackhole }",
        "      options: ['-e TT_METAL_OPERATION_TIMEOUT_SECONDS=5']",
      ].join("\n"),
    );
    if (!r.ok) throw new Error(r.errors.join("; "));
    expect(environmentFor(r.config, "n150", ["N150", "in-service"])).toEqual({
      image: "ghcr.io/tenstorrent/tt-metal/tt-metalium/ubuntu-22.04-ci-test-amd64:latest",
      workdir: "/work",
      env: { TT_METAL_HOME: "/work", LOGURU_LEVEL: "INFO", ARCH_NAME: "wormhole_b0" },
      options: ["--shm-size 2g"],
    });
    expect(environmentFor(r.config, "p150", ["p150", "arch-blackhole"])?.env.ARCH_NAME).toBe("blackhole");
    expect(environmentFor(DEFAULT_REPO_CONFIG, "cpu")).toBeNull();
    expect(parseContainerOptions("--shm-size=2G -e A=b -w /work --workdir /work2")).toEqual({
      shmSize: "2g",
      env: { A: "b" },
      workdir: "/work2",
      refused: [],
    });
  });
});

describe("the README's tt-metal example", () => {
  it("validates without warnings and gives an n150 job the CI's image, env and /work", async () => {
    const md = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    const section = md.slice(md.indexOf("#### Reproduce where CI failed"));
    const yaml = section.split("```yaml\n")[1]!.split("```")[0]!;
    const r = parseRepoConfig(yaml);
    if (!r.ok) throw new Error(r.errors.join("; "));
    expect(r.warnings).toEqual([]);
    expect(environmentFor(r.config, "n150", ["tt-ubuntu-2204-N150-stable"])).toMatchObject({
      image: expect.stringMatching(/^ghcr\.io\/tenstorrent\//),
      workdir: "/work",
      env: { TT_METAL_HOME: "/work", ARCH_NAME: "wormhole_b0", LD_LIBRARY_PATH: "/work/build/lib" },
    });
    expect(r.config.artifacts.build[0]?.name).toBe("TTMetal_build_any_*_{sha}_*");
    const env = section.split("```sh\n")[1]!.split("```")[0]!;
    const vars = Object.fromEntries(
      env
        .split("\n")
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const s = sandboxSettingsOf({
      ...vars,
      AUTOFIX_SANDBOX_POOL_IMAGES: [vars.AUTOFIX_SANDBOX_POOL_IMAGES],
      AUTOFIX_SANDBOX_IMAGE_PREFIXES: [vars.AUTOFIX_SANDBOX_IMAGE_PREFIXES],
      AUTOFIX_SANDBOX_MOUNTS: (vars.AUTOFIX_SANDBOX_MOUNTS ?? "").split(","),
      AUTOFIX_SANDBOX_UID: 65534,
      AUTOFIX_SANDBOX_GID: 65534,
      AUTOFIX_SANDBOX_NETWORK_REPOS: [],
    } as never);
    expect(s.problems).toEqual([]);
    expect(s.settings.mounts).toHaveLength(2);
  });
});

describe("the image a job may pick", () => {
  const configured = {
    poolImage: "registry.local/autofix/n150:1",
    allImages: ["registry.local/autofix/n150:1", "registry.local/autofix/cpu:1"],
    prefixes: [] as string[],
  };
  const env = (image: string): JobEnvironment => ({
    image,
    env: {},
    options: [],
    source: "workflow .github/workflows/t.yaml@abc job test",
    notes: [],
  });

  it("without AUTOFIX_SANDBOX_IMAGE_PREFIXES only the configured images: an arbitrary one falls back and says why", () => {
    const d = chooseImage(env("docker.io/attacker/miner:latest"), configured);
    expect(d).toMatchObject({
      image: "registry.local/autofix/n150:1",
      source: "worker default",
      requested: false,
    });
    expect(d.notes.join()).toMatch(/docker\.io\/attacker\/miner:latest .* is not allowed on this worker/);
    expect(chooseImage(env("registry.local/autofix/cpu:1"), configured)).toMatchObject({
      image: "registry.local/autofix/cpu:1",
      requested: true,
    });
  });

  it("prefixes match at a name boundary only", () => {
    const p = { ...configured, prefixes: ["ghcr.io/tenstorrent"] };
    expect(chooseImage(env("ghcr.io/tenstorrent/tt-metal/ci-test:v1"), p).image).toBe(
      "ghcr.io/tenstorrent/tt-metal/ci-test:v1",
    );
    expect(chooseImage(env("ghcr.io/tenstorrent-evil/x:1"), p).image).toBe(configured.poolImage);
    expect(chooseImage(env("ghcr.io/tenstorrentx"), p).image).toBe(configured.poolImage);
    expect(imageMatchesPrefix("ghcr.io/tenstorrent/", "ghcr.io/tenstorrent/")).toBe(false);
    // Under the prefix, but not an image reference (markup, spaces, ..): refused.
    for (const bad of [
      "ghcr.io/tenstorrent/<img src=x>",
      "ghcr.io/tenstorrent/x --privileged",
      "ghcr.io/tenstorrent/../evil/x",
    ]) {
      const d = chooseImage(env(bad), p);
      expect(d.image, bad).toBe(configured.poolImage);
      expect(d.notes.join()).toContain("not an image reference");
    }
  });

  it("operator mounts come from the worker's settings, per pool", () => {
    const s = sandboxSettingsOf({
      AUTOFIX_SANDBOX: "container",
      AUTOFIX_SANDBOX_POOL_IMAGES: [],
      AUTOFIX_CONTAINER_ENGINE: "podman",
      AUTOFIX_SANDBOX_UID: 65534,
      AUTOFIX_SANDBOX_GID: 65534,
      AUTOFIX_SANDBOX_NETWORK_REPOS: [],
      AUTOFIX_DEVICE_DIR: "/dev/tenstorrent",
      AUTOFIX_SANDBOX_IMAGE_PREFIXES: ["ghcr.io/tenstorrent/"],
      AUTOFIX_SANDBOX_MOUNTS: ["n150:/srv/models:/models", "*:/dev/hugepages-1G:/dev/hugepages-1G:rw", "bad"],
    } as never);
    expect(s.settings.mounts).toEqual([
      { pool: "n150", source: "/srv/models", target: "/models", readOnly: true },
      { pool: "*", source: "/dev/hugepages-1G", target: "/dev/hugepages-1G", readOnly: false },
    ]);
    expect(s.problems).toEqual([expect.stringContaining('"bad"')]);
    expect(parseSandboxMounts(["n150:/a/../etc:/x"]).problems).toHaveLength(1);
  });

  it("a comment-triggered job takes the commit's autofix.yml environment; a recorded CI environment wins", () => {
    const r = parseRepoConfig("environment:\n  image: ghcr.io/tenstorrent/x:1\n  workdir: /work\n");
    if (!r.ok) throw new Error("bad");
    expect(jobEnvironment({}, r.config, "n150")).toMatchObject({
      image: "ghcr.io/tenstorrent/x:1",
      source: "autofix.yml",
    });
    const ci = env("ghcr.io/tenstorrent/ci:2");
    expect(jobEnvironment({ environment: ci }, r.config, "n150")).toBe(ci);
    expect(jobEnvironment({}, null, "n150")).toBeUndefined();
  });
});

// The real container backend: the job's commands in the CI's image, with its env, at /work, with only its cards.
const { skip } = await backendBinary("podman");
const asRoot = process.getuid?.() === 0;
const engine = { binary: "podman" };
const rand = randomBytes(4).toString("hex");
const workerImage = `localhost/autofix-env-test-worker:${rand}`;
const ciImage = `localhost/autofix-ci-images/ci-test-amd64:${rand}`;

async function engine$(args: string[]) {
  const { argv, env } = engineCommand(engine, args);
  return runHostCommand(argv, { env, timeoutMs: 120_000 });
}
async function imageOf(jobId: string): Promise<string> {
  const r = await engine$(["ps", "--filter", `label=autofix.job=${jobId}`, "--format", "{{.Image}}"]);
  return r.stdout.trim();
}

describe.skipIf(skip || !asRoot)("the container backend runs the job's environment", () => {
  let fx: Fixture;
  let models: string;
  const open: JobExecutor[] = [];
  beforeAll(async () => {
    await buildHostImage({
      engine,
      tag: workerImage,
      binaries: ["bash", "sh", "cat", "ls", "env", "pwd", "touch", "echo", "df", "sleep", "tail"],
    });
    const t = await engine$(["tag", workerImage, ciImage]);
    expect(t.exitCode).toBe(0);
    fx = await makeFixture(`s-${rand}`);
    models = await mkdtemp(join(tmpdir(), "autofix-models-"));
    await chmod(models, 0o755);
    await writeFile(join(models, "weights.bin"), "w\n", { mode: 0o644 });
    await mkdir(join(models, "sub"));
  }, 300_000);
  afterAll(async () => {
    for (const e of open) await e.dispose().catch(() => {});
    await removeHostImage(engine, ciImage);
    await removeHostImage(engine, workerImage);
    await fx?.cleanup();
    if (models) await rm(models, { recursive: true, force: true });
  }, 120_000);

  const settings = (): SandboxSettings => ({
    mode: "container",
    image: workerImage,
    poolImages: {},
    engine,
    uid: 65534,
    gid: 65534,
    networkRepos: [],
    deviceDir: fx.deviceDir,
    imagePrefixes: ["localhost/autofix-ci-images/"],
    mounts: [{ pool: "n150", source: models, target: "/models", readOnly: true }],
    setting: { name: "AUTOFIX_SANDBOX", none: "AUTOFIX_SANDBOX=none" },
  });
  const make = async (jobId: string, environment: JobEnvironment | undefined, pool = "n150") => {
    const r = await createSandbox(settings(), {
      bwrap: { ok: false, detail: "" },
      engine: { ok: true, detail: "podman" },
    });
    if (!r.ok) throw new Error(r.problem);
    const exec = await r.sandbox.factory({
      workspace: fx.workspace,
      env: { TT_VISIBLE_DEVICES: "0" },
      cards: ["0"],
      jobId,
      pool,
      ...(environment ? { environment } : {}),
    });
    open.push(exec);
    return exec;
  };
  const ciEnv: JobEnvironment = {
    image: ciImage,
    env: {
      TT_METAL_HOME: "/work",
      LD_LIBRARY_PATH: "/work/build/lib",
      ARCH_NAME: "wormhole_b0",
      TT_VISIBLE_DEVICES: "0,1",
    },
    options: ["--shm-size=128m"],
    workdir: "/work",
    source: "workflow .github/workflows/t.yaml@abc job test",
    notes: [],
  };

  it("in the CI's image, with the CI's env, the workspace at /work, only the job's cards and the operator's read-only mounts", async () => {
    const id = `env-ci-${rand}`;
    const exec = await make(id, ciEnv);
    const r = await exec.run(
      "pwd; cat README; echo $TT_METAL_HOME $LD_LIBRARY_PATH $ARCH_NAME $TT_VISIBLE_DEVICES; ls /dev/tenstorrent; cat /models/weights.bin; touch /models/x 2>/dev/null || echo RO; df -k /dev/shm | tail -1",
    );
    const lines = r.stdout.split("\n");
    expect(lines.slice(0, 7)).toEqual([
      "/work",
      "the job's own file",
      // The job's own card pinning wins over the environment's.
      "/work /work/build/lib wormhole_b0 0",
      "0",
      "w",
      "RO",
      expect.stringMatching(/^shm\s+131072\s/),
    ]);
    expect(await imageOf(`${id}`)).toBe(ciImage);
    expect(exec.details).toMatchObject({ image: `${ciImage} (${ciEnv.source})`, workdir: "/work" });
  }, 120_000);

  it("an image the operator did not allow is not run: the worker's image, at the host path, and the report says why", async () => {
    const id = `env-evil-${rand}`;
    const exec = await make(id, { ...ciEnv, image: "docker.io/attacker/evil:latest" }, "cpu");
    const r = await exec.run(
      'pwd; [ -z "$TT_METAL_HOME" ] && echo unset; ls /models 2>/dev/null || echo no-models',
    );
    expect(r.stdout).toBe(`${fx.workspace}\nunset\nno-models\n`);
    expect(await imageOf(id)).toBe(workerImage);
    expect(exec.details?.image).toBe(`${workerImage} (worker default)`);
    expect(exec.details?.["environment notes"]).toMatch(
      /docker\.io\/attacker\/evil:latest .* is not allowed on this worker/,
    );
  }, 120_000);

  it("an allowed image that cannot be pulled falls back to the worker's image and says so", async () => {
    const id = `env-nopull-${rand}`;
    const exec = await make(id, { ...ciEnv, image: `localhost/autofix-ci-images/absent:${rand}` });
    expect((await exec.run("pwd")).stdout).toBe(`${fx.workspace}\n`);
    expect(await imageOf(id)).toBe(workerImage);
    expect(exec.details?.["environment notes"]).toMatch(
      /could not pull localhost\/autofix-ci-images\/absent:.*ran the worker's image instead/,
    );
  }, 180_000);
});
