import {
  chmod,
  copyFile,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readlink,
  realpath,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { runHostCommand } from "../shared/process.js";
import { findBinary, SandboxError } from "./common.js";
import { type ContainerEngineOptions, engineCommand } from "./container.js";

/**
 * A container image made of this host's own binaries (and their shared libraries, found with
 * ldd), imported into the engine from a tarball: for hosts with no image registry, such as the
 * test machines and the benchmark. It is no CI image; jobs use the CI's.
 */

export interface HostImageOptions {
  engine: ContainerEngineOptions;
  /** Tag to import as, e.g. `localhost/autofix-host-tools:test`. */
  tag: string;
  /** Binaries found on the service's PATH (or absolute). */
  binaries: readonly string[];
  /** Whole host folders copied as they are (symlinks kept), e.g. /usr/lib/git-core. */
  folders?: readonly string[];
  /** Binaries whose libraries are resolved too, besides `binaries` (e.g. inside `folders`). */
  alsoLink?: readonly string[];
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Build the root file system in a temp folder, import it, remove the folder. Returns the tag. */
export async function buildHostImage(o: HostImageOptions): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), "autofix-host-image-"));
  const root = path.join(work, "rootfs");
  try {
    await mkdir(root);
    await chmod(root, 0o755);
    // The host's top-level links (merged /usr) as they are.
    for (const dir of ["/bin", "/sbin", "/lib", "/lib64"]) {
      const st = await lstat(dir).catch(() => null);
      if (st?.isSymbolicLink()) await symlink(await readlink(dir), path.join(root, dir));
      else if (st?.isDirectory()) await mkdir(path.join(root, dir), { recursive: true });
    }
    for (const d of ["etc", "tmp", "proc", "sys", "dev", "home", "root", "usr/bin", "usr/lib", "var/tmp"]) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await chmod(path.join(root, "tmp"), 0o1777);
    await writeFile(
      path.join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    );
    await writeFile(path.join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");

    const copied = new Set<string>();
    const copyPath = async (p: string): Promise<void> => {
      // Copy the file a path names, recreating every symbolic link on the way.
      if (copied.has(p)) return;
      copied.add(p);
      const parent = await realpath(path.dirname(p));
      const here = path.join(parent, path.basename(p));
      await mkdir(path.join(root, parent), { recursive: true });
      const st = await lstat(here);
      if (st.isSymbolicLink()) {
        const target = await readlink(here);
        await symlink(target, path.join(root, here)).catch(() => {});
        await copyPath(path.resolve(parent, target));
      } else {
        await copyFile(here, path.join(root, here)).catch(() => {});
        await chmod(path.join(root, here), st.mode & 0o7777);
      }
    };
    const libsOf = async (bin: string): Promise<string[]> => {
      const r = await runHostCommand(["ldd", bin], { env: { PATH: DEFAULT_PATH } });
      return [...r.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
    };
    const bins: string[] = [];
    for (const b of o.binaries) {
      const found = await findBinary(b);
      if (!found) throw new SandboxError(`buildHostImage: ${b} not found on PATH`);
      bins.push(found);
    }
    for (const f of o.folders ?? []) {
      await mkdir(path.join(root, path.dirname(f)), { recursive: true });
      await cp(f, path.join(root, f), { recursive: true, verbatimSymlinks: true });
    }
    for (const b of [...bins, ...(o.alsoLink ?? [])]) {
      await copyPath(b);
      for (const lib of await libsOf(b)) await copyPath(lib);
    }
    const tar = path.join(work, "rootfs.tar");
    const t = await runHostCommand(["tar", "-C", root, "-cf", tar, "."], { env: { PATH: DEFAULT_PATH } });
    if (t.exitCode !== 0) throw new SandboxError(`buildHostImage: tar failed: ${t.stderr.trim()}`);
    const { argv, env } = engineCommand(o.engine, [
      "import",
      "--change",
      `ENV PATH=${DEFAULT_PATH}`,
      tar,
      o.tag,
    ]);
    const r = await runHostCommand(argv, { env, timeoutMs: 300_000 });
    if (r.exitCode !== 0) throw new SandboxError(`buildHostImage: import failed: ${r.stderr.trim()}`);
    return o.tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Remove an image imported by buildHostImage (no error when it is gone). */
export async function removeHostImage(engine: ContainerEngineOptions, tag: string): Promise<void> {
  const { argv, env } = engineCommand(engine, ["rmi", "-f", tag]);
  await runHostCommand(argv, { env, timeoutMs: 120_000 }).catch(() => {});
}
