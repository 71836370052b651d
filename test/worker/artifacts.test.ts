import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_REPO_CONFIG, parseRepoConfig } from "../../src/config/repo-config.js";
import {
  ArtifactError,
  downloadAndUnpack,
  findBuildArtifact,
  unpackArtifact,
  unpackJobArtifact,
} from "../../src/worker/artifacts.js";

/** A tar stream from entries, written by hand so hostile names and types are possible. */
type Entry = {
  name: string;
  type?: "0" | "1" | "2" | "3" | "5";
  body?: string | Buffer;
  link?: string;
  mode?: number;
};
function tarOf(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(`${(e.mode ?? 0o644).toString(8).padStart(7, "0")}\0`, 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(`${(e.type === "0" || !e.type ? body.length : 0).toString(8).padStart(11, "0")}\0`, 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write(e.type ?? "0", 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write("ustar\x0000", 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(h);
    if (!e.type || e.type === "0") {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "autofix-artifacts-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function fresh() {
  const d = path.join(dir, `case-${++n}`);
  await mkdir(path.join(d, "ws"), { recursive: true });
  return { d, ws: path.join(d, "ws") };
}
const zstd = (file: string) => execFileSync("zstd", ["-q", "-f", file, "-o", `${file}.zst`]);
/** An Actions-style download: a zip holding the given files. */
function zipOf(cwd: string, out: string, files: string[]) {
  execFileSync("zip", ["-q", "-X", out, ...files], { cwd });
}
async function listAll(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(root, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out.sort();
}

const buildTree: Entry[] = [
  { name: "build/", type: "5" },
  { name: "build/lib/", type: "5" },
  { name: "build/lib/libtt_metal.so.1", body: "ELF-ish", mode: 0o4755 },
  { name: "build/lib/libtt_metal.so", type: "2", link: "libtt_metal.so.1" },
  { name: "ttnn/ttnn/_ttnn.so", body: "python ext" },
];

describe("unpackArtifact", () => {
  it("unpacks an Actions zip holding ttm_any.tar.zst into the workspace: files, modes without setuid, links inside", async () => {
    const { d, ws } = await fresh();
    await writeFile(path.join(d, "ttm_any.tar"), tarOf(buildTree));
    zstd(path.join(d, "ttm_any.tar"));
    zipOf(d, path.join(d, "artifact.zip"), ["ttm_any.tar.zst"]);
    const r = await unpackArtifact(path.join(d, "artifact.zip"), ws, { archives: ["ttm_any.tar.zst"] });
    expect(r.unpacked).toEqual(["ttm_any.tar.zst"]);
    expect(r.files).toBe(2);
    expect(await readFile(path.join(ws, "build/lib/libtt_metal.so"), "utf8")).toBe("ELF-ish");
    expect(await readlink(path.join(ws, "build/lib/libtt_metal.so"))).toBe("libtt_metal.so.1");
    expect((await stat(path.join(ws, "build/lib/libtt_metal.so.1"))).mode & 0o7777).toBe(0o755);
    expect(await readFile(path.join(ws, "ttnn/ttnn/_ttnn.so"), "utf8")).toBe("python ext");
  });

  it("unpacks a plain .tar and a .tar.zst into a configured destination", async () => {
    const { d, ws } = await fresh();
    await writeFile(path.join(d, "b.tar"), tarOf(buildTree));
    zstd(path.join(d, "b.tar"));
    await unpackArtifact(path.join(d, "b.tar"), ws, { destination: "out/one" });
    await unpackArtifact(path.join(d, "b.tar.zst"), ws, { destination: "out/two" });
    expect(await readFile(path.join(ws, "out/one/ttnn/ttnn/_ttnn.so"), "utf8")).toBe("python ext");
    expect(await readFile(path.join(ws, "out/two/build/lib/libtt_metal.so.1"), "utf8")).toBe("ELF-ish");
  });

  const hostile: Array<[string, Entry[], RegExp]> = [
    ["a .. path", [{ name: "../escaped", body: "x" }], /leaves the destination/],
    ["a nested .. path", [{ name: "build/../../escaped", body: "x" }], /leaves the destination/],
    ["an absolute path", [{ name: "/tmp/autofix-absolute-escape", body: "x" }], /leaves the destination/],
    [
      "a link out of the workspace",
      [{ name: "build/evil", type: "2", link: "../../../etc" }],
      /leaves the destination/,
    ],
    ["an absolute link", [{ name: "evil", type: "2", link: "/etc" }], /absolute/],
    [
      "a file written through a link of the archive",
      [
        { name: "sub/", type: "5" },
        { name: "via", type: "2", link: "sub" },
        { name: "via/file", body: "x" },
      ],
      /symbolic link/,
    ],
    ["a hard link", [{ name: "h", type: "1", link: "etc/passwd" }], /hard link/],
    ["a device", [{ name: "dev", type: "3" }], /special file/],
  ];
  for (const [what, entries, message] of hostile) {
    it(`refuses ${what}, and leaves nothing of the archive behind`, async () => {
      const { d, ws } = await fresh();
      const archive = path.join(d, "hostile.tar");
      await writeFile(
        archive,
        tarOf([{ name: "first.txt", body: "written before the bad entry" }, ...entries]),
      );
      await expect(unpackArtifact(archive, ws)).rejects.toThrow(message);
      expect(await listAll(ws)).toEqual([]);
      expect(await listAll(d)).toEqual(["hostile.tar", "ws"]);
    });
  }

  it("refuses to write through a link the repository committed (build -> outside)", async () => {
    const { d, ws } = await fresh();
    await mkdir(path.join(d, "outside"));
    await symlink(path.join(d, "outside"), path.join(ws, "build"));
    await writeFile(path.join(d, "a.tar"), tarOf([{ name: "build/lib/x.so", body: "planted" }]));
    await expect(unpackArtifact(path.join(d, "a.tar"), ws)).rejects.toThrow(/symbolic link/);
    expect(await readdir(path.join(d, "outside"))).toEqual([]);
  });

  it("refuses a size bomb past the cap (a zstd stream of zeros), removing what it wrote", async () => {
    const { d, ws } = await fresh();
    await writeFile(
      path.join(d, "bomb.tar"),
      tarOf([{ name: "zeros", body: Buffer.alloc(4 * 1024 * 1024) }]),
    );
    zstd(path.join(d, "bomb.tar"));
    expect((await stat(path.join(d, "bomb.tar.zst"))).size).toBeLessThan(64 * 1024);
    await expect(unpackArtifact(path.join(d, "bomb.tar.zst"), ws, { maxBytes: 1024 * 1024 })).rejects.toThrow(
      /more than 1\.0 MB/,
    );
    expect(await listAll(ws)).toEqual([]);
  });

  it("unpacks files of every size byte for byte, split across many chunks (zip > .tar.zst, plain .tar, plain zip file)", async () => {
    const { d, ws } = await fresh();
    // Sizes around the block (512), the read chunk (64 KiB, 256 KiB), the small-file limit
    // (256 KiB) and the write batch (1 MiB): files and headers straddle chunk boundaries.
    const sizes = [0, 1, 511, 512, 513, 65_535, 65_536, 65_537, 262_143, 262_144, 262_145];
    sizes.push(1024 * 1024 - 1, 1024 * 1024 + 1, 3 * 1024 * 1024 + 77);
    let seed = 7;
    const bytes = (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[i] = seed >>> 24;
      }
      return b;
    };
    const entries: Entry[] = sizes.map((n, i) => ({ name: `big/f${i}-${n}.bin`, body: bytes(n) }));
    await writeFile(path.join(d, "many.tar"), tarOf(entries));
    zstd(path.join(d, "many.tar"));
    await writeFile(path.join(d, "plain.bin"), bytes(700_001));
    zipOf(d, path.join(d, "a.zip"), ["many.tar.zst", "plain.bin"]);
    const r = await unpackArtifact(path.join(d, "a.zip"), path.join(ws), { destination: "z" });
    expect(r.files).toBe(sizes.length + 1);
    expect(r.bytes).toBe(sizes.reduce((a, b) => a + b, 0) + 700_001);
    await unpackArtifact(path.join(d, "many.tar"), ws, { destination: "t" });
    for (const e of entries) {
      expect((await readFile(path.join(ws, "z", e.name))).equals(e.body as Buffer), e.name).toBe(true);
      expect((await readFile(path.join(ws, "t", e.name))).equals(e.body as Buffer), e.name).toBe(true);
    }
    expect(
      (await readFile(path.join(ws, "z/plain.bin"))).equals(await readFile(path.join(d, "plain.bin"))),
    ).toBe(true);
  });

  it("a file entry replaces a link at its own name instead of writing through it (the archive's or the repository's)", async () => {
    const { d, ws } = await fresh();
    await mkdir(path.join(d, "outside"));
    await writeFile(path.join(d, "outside/secret"), "kept");
    await mkdir(path.join(ws, "build"));
    await symlink(path.join(d, "outside/secret"), path.join(ws, "build/x.so"));
    await writeFile(
      path.join(d, "a.tar"),
      tarOf([
        { name: "lib/", type: "5" },
        { name: "lib/l", type: "2", link: "not-yet" },
        { name: "lib/l", body: "file now" },
        { name: "build/x.so", body: "from the artifact" },
      ]),
    );
    await unpackArtifact(path.join(d, "a.tar"), ws);
    expect(await readFile(path.join(d, "outside/secret"), "utf8")).toBe("kept");
    expect(await readFile(path.join(ws, "build/x.so"), "utf8")).toBe("from the artifact");
    expect(await readFile(path.join(ws, "lib/l"), "utf8")).toBe("file now");
    expect(await listAll(path.join(ws, "lib"))).toEqual(["l"]);
  });

  it("refuses a file where the archive made a folder, and a link over that folder", async () => {
    for (const second of [
      { name: "d", body: "x" },
      { name: "d", type: "2" as const, link: "elsewhere" },
    ]) {
      const { d, ws } = await fresh();
      await writeFile(
        path.join(d, "a.tar"),
        tarOf([
          { name: "d/", type: "5" },
          { name: "d/in", body: "inside" },
          second,
          { name: "d/after", body: "y" },
        ]),
      );
      await expect(unpackArtifact(path.join(d, "a.tar"), ws)).rejects.toThrow(/is a folder/);
      expect(await listAll(ws)).toEqual([]);
    }
  });

  it("refuses a tar entry whose size is not a number, and a truncated archive", async () => {
    const { d, ws } = await fresh();
    const tar = tarOf([
      { name: "first.txt", body: "written before" },
      { name: "bad", body: "x" },
    ]);
    // The second header's size field, made garbage (its checksum is not checked).
    tar.write("zzzzzzzzzzz\0", 1024 + 124);
    await writeFile(path.join(d, "bad.tar"), tar);
    await expect(unpackArtifact(path.join(d, "bad.tar"), ws)).rejects.toThrow(/size "zzzzzzzzzzz": refused/);
    expect(await listAll(ws)).toEqual([]);
    const whole = tarOf([{ name: "cut", body: Buffer.alloc(100_000, 1) }]);
    await writeFile(path.join(d, "cut.tar"), whole.subarray(0, 50_000));
    await expect(unpackArtifact(path.join(d, "cut.tar"), ws)).rejects.toThrow(/ends in the middle of a file/);
    expect(await listAll(ws)).toEqual([]);
  });

  it("refuses zip entries that climb out and zip symlinks", async () => {
    const { d, ws } = await fresh();
    await mkdir(path.join(d, "z/inner"), { recursive: true });
    await writeFile(path.join(d, "z/inner/ok.txt"), "ok");
    await symlink("/etc/passwd", path.join(d, "z/inner/link"));
    execFileSync("zip", ["-q", "-y", path.join(d, "l.zip"), "inner/link"], { cwd: path.join(d, "z") });
    await expect(unpackArtifact(path.join(d, "l.zip"), ws)).rejects.toThrow(ArtifactError);
    await expect(unpackArtifact(path.join(d, "l.zip"), ws)).rejects.toThrow(/symbolic link/);
    // ../ names: zip strips them when writing, so the entry name is patched in the file.
    execFileSync("zip", ["-q", path.join(d, "t.zip"), "inner/ok.txt"], { cwd: path.join(d, "z") });
    const bytes = await readFile(path.join(d, "t.zip"));
    await writeFile(
      path.join(d, "t.zip"),
      Buffer.from(bytes.toString("latin1").split("inner/ok.txt").join("../../ok.txt"), "latin1"),
    );
    await expect(unpackArtifact(path.join(d, "t.zip"), ws)).rejects.toThrow(/leaves the destination/);
    expect(await listAll(ws)).toEqual([]);
  });
});

describe("an artifact from the Actions API", () => {
  const sha = "c0ffee".padEnd(40, "0");
  let server: Server;
  let base: string;
  let zip: Buffer;
  let hostileZip: Buffer;
  const seen: Array<{ url: string; auth: string | undefined }> = [];
  beforeAll(async () => {
    const { d } = await fresh();
    await writeFile(path.join(d, "ttm_any.tar"), tarOf(buildTree));
    zstd(path.join(d, "ttm_any.tar"));
    zipOf(d, path.join(d, "a.zip"), ["ttm_any.tar.zst"]);
    zip = await readFile(path.join(d, "a.zip"));
    await mkdir(path.join(d, "h"));
    await writeFile(
      path.join(d, "h/ttm_any.tar"),
      tarOf([
        { name: "build/ok", body: "x" },
        { name: "../../etc/cron.d/x", body: "evil" },
      ]),
    );
    zipOf(path.join(d, "h"), path.join(d, "h.zip"), ["ttm_any.tar"]);
    hostileZip = await readFile(path.join(d, "h.zip"));
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? "", auth: req.headers.authorization });
      const u = req.url ?? "";
      const json = (body: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (u.startsWith("/repos/o/r/actions/runs/200/artifacts"))
        return json({
          total_count: 1,
          artifacts: [{ id: 9, name: `TTMetal_build_any_x_${sha}_200`, size_in_bytes: 100, expired: false }],
        });
      if (u === "/repos/o/r/actions/artifacts/9/zip") {
        res.writeHead(200, { "content-type": "application/zip" });
        return res.end(hostileZip);
      }
      if (u.startsWith("/repos/o/r/actions/runs/100/artifacts"))
        return json({
          total_count: 1,
          artifacts: [{ id: 1, name: "test-reports", size_in_bytes: 10, expired: false }],
        });
      if (u.startsWith("/repos/o/r/actions/runs?head_sha="))
        return json({ workflow_runs: [{ id: 99, head_sha: sha }] });
      if (u.startsWith("/repos/o/r/actions/runs/99/artifacts"))
        return json({
          total_count: 2,
          artifacts: [
            {
              id: 7,
              name: `TTMetal_build_any_22.04_x86_clang_Release_${"f".repeat(40)}_99`,
              size_in_bytes: zip.length,
              expired: false,
            },
            {
              id: 8,
              name: `TTMetal_build_any_22.04_x86_clang_Release_${sha}_99`,
              size_in_bytes: zip.length,
              expired: false,
              workflow_run: { id: 99, head_sha: sha },
            },
          ],
        });
      if (u === "/repos/o/r/actions/artifacts/8/zip") {
        res.writeHead(302, { location: `${base}/blob/artifact.zip?sig=secret-signature` });
        return res.end();
      }
      if (u.startsWith("/blob/artifact.zip")) {
        res.writeHead(200, { "content-type": "application/zip" });
        return res.end(zip);
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it("finds the build artifact of a successful run at the same commit, downloads it and unpacks it instead of building", async () => {
    const { ws } = await fresh();
    const cfg = parseRepoConfig(
      `artifacts:\n  build:\n    - name: "TTMetal_build_any_*_{sha}_*"\n      archives: [ttm_any.tar.zst]\n`,
    );
    if (!cfg.ok) throw new Error(cfg.errors.join("; "));
    const ref = { owner: "o", repo: "r", apiBase: base, webBase: base };
    const access = { token: "ghs_test_token_not_for_blob_hosts_123456" };
    const found = await findBuildArtifact(
      ref as never,
      { runId: 100, sha, rules: cfg.config.artifacts.build, fromSuccessfulRuns: true },
      access,
    );
    expect(found?.artifact).toMatchObject({ id: 8, runId: 99 });
    const r = await downloadAndUnpack(ref as never, found!, ws, access);
    expect(r.status).toMatch(
      new RegExp(
        `^build: artifact TTMetal_build_any_22\\.04_x86_clang_Release_${sha}_99 from run 99 \\(unpacked \\d+ B\\)$`,
      ),
    );
    expect(await readFile(path.join(ws, "build/lib/libtt_metal.so.1"), "utf8")).toBe("ELF-ish");
    // The signed blob URL gets no token.
    const blob = seen.find((s) => s.url.startsWith("/blob/"));
    expect(blob?.auth).toBeUndefined();
    expect(seen.find((s) => s.url.includes("/artifacts/8/zip"))?.auth).toBe(`Bearer ${access.token}`);
  });

  it("none found when no artifact matches the pattern at this commit", async () => {
    const ref = { owner: "o", repo: "r", apiBase: base, webBase: base };
    const found = await findBuildArtifact(
      ref as never,
      {
        runId: 100,
        sha,
        rules: [{ name: "ttnn-dist-*-{sha}-*", archives: [], destination: "." }],
        fromSuccessfulRuns: true,
      },
      { token: "ghs_x" },
    );
    expect(found).toBeNull();
  });

  it("the worker's step: the job's configured artifact unpacked into its workspace, given to the sandbox's uid, and the status line", async () => {
    const { ws } = await fresh();
    const cfg = parseRepoConfig(`artifacts:\n  build:\n    - name: "TTMetal_build_any_*_{sha}_*"\n`);
    if (!cfg.ok) throw new Error("bad config");
    let asked = 0;
    const job = { repository: { owner: "o", name: "r" }, target: { headSha: sha }, ci: { runId: 100 } };
    const r = await unpackJobArtifact({
      job,
      config: cfg.config,
      workspace: ws,
      apiBase: base,
      token: async () => {
        asked++;
        return "ghs_worker_token_abcdefghijklmnop";
      },
      ...(process.getuid?.() === 0 ? { owner: { uid: 65534, gid: 65534 } } : {}),
    });
    expect(r).toEqual({
      status: expect.stringMatching(/^build: artifact TTMetal_build_any_.* from run 99 \(unpacked \d+ B\)$/),
      unpacked: true,
    });
    expect(await readFile(path.join(ws, "build/lib/libtt_metal.so.1"), "utf8")).toBe("ELF-ish");
    if (process.getuid?.() === 0)
      expect((await stat(path.join(ws, "build/lib/libtt_metal.so.1"))).uid).toBe(65534);
    expect(asked).toBe(1);
    // No artifacts configured: nothing asked of GitHub, the usual build.
    expect(
      await unpackJobArtifact({
        job,
        config: DEFAULT_REPO_CONFIG,
        workspace: ws,
        apiBase: base,
        token: async () => {
          asked++;
          return "x";
        },
      }),
    ).toBeNull();
    expect(asked).toBe(1);
  });

  it("a hostile artifact is not used: the status says so, the job builds, nothing was written", async () => {
    const { ws } = await fresh();
    const cfg = parseRepoConfig(
      `artifacts:\n  build:\n    - name: "TTMetal_build_any_*_{sha}_*"\n  from_successful_runs: false\n`,
    );
    if (!cfg.ok) throw new Error("bad config");
    const r = await unpackJobArtifact({
      job: { repository: { owner: "o", name: "r" }, target: { headSha: sha }, ci: { runId: 200 } },
      config: cfg.config,
      workspace: ws,
      apiBase: base,
      token: async () => "ghs_worker_token_abcdefghijklmnop",
    });
    expect(r).toEqual({
      status: expect.stringMatching(
        /^build: the artifact was not used \(.*leaves the destination.*\); building$/,
      ),
      unpacked: false,
    });
    expect(await listAll(ws)).toEqual([]);
  });
});
