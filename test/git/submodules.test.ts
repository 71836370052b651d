import { describe, expect, it } from "vitest";
import {
  checkSubmodulePath,
  lfsUrlOf,
  parseGitmodulesList,
  parseLsTree,
  resolveSubmoduleUrl,
  sameOwner,
  submoduleMirrorName,
  usesLfs,
} from "../../src/git/submodules.js";

/**
 * A `.gitmodules` is the repository's, so a fork's or a model's: its URLs and paths are read
 * as hostile data. Only what the service's own remotes may use is fetched.
 */

const GH = "https://github.com/acme/widget.git";

describe("submodule URLs", () => {
  it("resolves relative URLs the way git does, against the superproject's remote", () => {
    expect(resolveSubmoduleUrl(GH, "../umd.git")).toBe("https://github.com/acme/umd.git");
    expect(resolveSubmoduleUrl(GH, "../../tenstorrent/tt-llk")).toBe("https://github.com/tenstorrent/tt-llk");
    expect(resolveSubmoduleUrl("https://github.com/acme/widget", "./sub")).toBe(
      "https://github.com/acme/widget/sub",
    );
    expect(resolveSubmoduleUrl("http://ghe.local/acme/widget.git", "../x.git")).toBe(
      "http://ghe.local/acme/x.git",
    );
    expect(resolveSubmoduleUrl("file:///srv/remotes/acme/widget.git", "../sub.git")).toBe(
      "file:///srv/remotes/acme/sub.git",
    );
    expect(resolveSubmoduleUrl(GH, "https://github.com/tenstorrent/tt-umd.git")).toBe(
      "https://github.com/tenstorrent/tt-umd.git",
    );
  });

  it.each([
    ["file:///etc", /protocol file is not allowed/],
    ["file:///srv/remotes/acme/secret.git", /protocol file is not allowed/],
    ["/etc/passwd", /not a URL/],
    ["~/repo.git", /not a URL/],
    ["ext::sh -c touch% /tmp/pwned", /whitespace|transport helpers/],
    ["ext::sh%20-c%20id", /transport helpers/],
    ["fd::17", /transport helpers/],
    ["--upload-pack=touch /tmp/pwned", /whitespace|option/],
    ["-uhttps://x", /option/],
    ["ssh://git@github.com/acme/x.git", /protocol ssh is not allowed/],
    ["git@github.com:acme/x.git", /not a URL/],
    ["git://github.com/acme/x.git", /protocol git is not allowed/],
    ["http://github.com/acme/x.git", /protocol http is not allowed/],
    ["https://user:pass@github.com/acme/x.git", /credentials/],
    ["https://github.com/acme/x.git?upload-pack=x", /query/],
    ["https://github.com/x", /owner>\/<repository/],
    ["../../../etc", /climbs above the host/],
    ["../../..", /climbs above the host/],
    ["../a/../../../b", /climbs above the host/],
    ["../", /owner>\/<repository/],
    ["https://github.com/acme/x\n.git", /control/],
  ])("refuses %j", (url, why) => {
    expect(() => resolveSubmoduleUrl(GH, url)).toThrow(why);
  });

  it("a local superproject's relative URLs stay below the folder of its owner folders", () => {
    const base = "file:///tmp/remotes/acme/widget.git";
    expect(resolveSubmoduleUrl(base, "../../other/x.git")).toBe("file:///tmp/remotes/other/x.git");
    expect(() => resolveSubmoduleUrl(base, "../../../etc")).toThrow(/climbs above the remotes' root/);
    expect(() => resolveSubmoduleUrl(base, "../../../../etc/passwd")).toThrow(/climbs above/);
  });

  it("the token goes only to repositories of the same owner on the same host", () => {
    expect(sameOwner(GH, "https://github.com/acme/umd.git")).toBe(true);
    expect(sameOwner(GH, "https://github.com/ACME/umd.git")).toBe(true);
    expect(sameOwner(GH, "https://github.com/tenstorrent/umd.git")).toBe(false);
    expect(sameOwner(GH, "https://evil.example/acme/umd.git")).toBe(false);
    expect(sameOwner(GH, "http://github.com/acme/umd.git")).toBe(false);
  });

  it("names mirrors by host and path, uniquely", () => {
    const a = submoduleMirrorName("https://github.com/acme/umd.git");
    expect(a).toMatch(/^github\.com_acme_umd-[0-9a-f]{12}\.git$/);
    expect(submoduleMirrorName("https://github.com/acme/umd")).not.toBe(a);
    expect(submoduleMirrorName("https://github.com/acme/../x/y.git")).toMatch(
      /^[A-Za-z0-9][A-Za-z0-9._-]*\.git$/,
    );
    expect(lfsUrlOf("https://github.com/acme/widget")).toBe("https://github.com/acme/widget.git/info/lfs");
    expect(lfsUrlOf("https://github.com/acme/widget.git")).toBe(
      "https://github.com/acme/widget.git/info/lfs",
    );
  });
});

describe("submodule paths", () => {
  it.each([
    ["../outside"],
    ["/abs/path"],
    ["a/../../b"],
    [".git/hooks"],
    ["deps/.GIT/x"],
    ["deps/.git. "],
    ["GIT~1/x"],
    ["a//b"],
    ["a\\b"],
    ["a\nb"],
    [""],
  ])("refuses %j", (p) => {
    expect(() => checkSubmodulePath(p)).toThrow(/unsafe submodule path/);
  });

  it("accepts ordinary nested paths", () => {
    expect(checkSubmodulePath("tt_metal/third_party/umd")).toBe("tt_metal/third_party/umd");
    expect(checkSubmodulePath(".github/x")).toBe(".github/x");
  });
});

describe("reading .gitmodules and trees", () => {
  it("matches names, paths and URLs; keeps gitlinks and attribute files", () => {
    const z = [
      "submodule.umd.path\ntt_metal/third_party/umd",
      "submodule.umd.url\n../umd.git",
      "submodule.a.b.url\nhttps://github.com/x/y",
      "core.bare\nfalse",
      "",
    ].join("\0");
    expect(parseGitmodulesList(z)).toEqual([
      { name: "umd", path: "tt_metal/third_party/umd", url: "../umd.git" },
      { name: "a.b", url: "https://github.com/x/y" },
    ]);
    const sha = "a".repeat(40);
    const tree = parseLsTree(
      [
        `160000 commit ${sha}\ttt_metal/third_party/umd`,
        `100644 blob ${"b".repeat(40)}\t.gitattributes`,
        `100644 blob ${"c".repeat(40)}\tmodels/.gitattributes`,
        `100644 blob ${"d".repeat(40)}\tREADME.md`,
        "",
      ].join("\0"),
    );
    expect([...tree.gitlinks]).toEqual([["tt_metal/third_party/umd", sha]]);
    expect(tree.attributes).toEqual([".gitattributes", "models/.gitattributes"]);
    expect(usesLfs("*.bin filter=lfs diff=lfs merge=lfs -text\n")).toBe(true);
    expect(usesLfs("# *.bin filter=lfs\n*.c text\n")).toBe(false);
  });
});
