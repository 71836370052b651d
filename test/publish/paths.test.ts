import { describe, expect, it } from "vitest";
import { ownersOf, ownersOfFiles, parseCodeowners } from "../../src/publish/codeowners.js";
import { matchesGlob } from "../../src/publish/glob.js";
import { recommendWorkflows } from "../../src/publish/workflows.js";

describe("path patterns", () => {
  it("follows gitignore-style rules", () => {
    expect(matchesGlob("ttnn/cpp/op.cpp", "ttnn/**")).toBe(true);
    expect(matchesGlob("ttnn/cpp/op.cpp", "*.cpp")).toBe(true);
    expect(matchesGlob("ttnn/cpp/op.cpp", "/ttnn/")).toBe(true);
    expect(matchesGlob("models/ttnn/x.py", "/ttnn/")).toBe(false);
    expect(matchesGlob("docs/a/b.md", "docs/**/*.md")).toBe(true);
    expect(matchesGlob("docs/b.md", "docs/**/*.md")).toBe(true);
    expect(matchesGlob("tt_metal/impl/device.cpp", "tt_metal/impl")).toBe(true);
    expect(matchesGlob("tt_metal/impl2/device.cpp", "tt_metal/impl")).toBe(false);
    expect(matchesGlob("a/file?.c", "a/file?.c")).toBe(true);
  });
});

describe("CODEOWNERS", () => {
  const rules = parseCodeowners(`# owners
* @org/everyone
/ttnn/ @org/ttnn-team @alice
tt_metal/impl/dispatch/ @bob # dispatch
*.md
`);
  it("lets the last matching rule win, and an owner-less rule clear owners", () => {
    expect(ownersOf("ttnn/cpp/op.cpp", rules)).toEqual(["@org/ttnn-team", "@alice"]);
    expect(ownersOf("tt_metal/impl/dispatch/cq.cpp", rules)).toEqual(["@bob"]);
    expect(ownersOf("README.md", rules)).toEqual([]);
    expect(ownersOf("setup.py", rules)).toEqual(["@org/everyone"]);
  });
  it("ranks owners by how many changed files they own", () => {
    expect(ownersOfFiles(["ttnn/a.cpp", "ttnn/b.cpp", "tt_metal/impl/dispatch/c.cpp"], rules)).toEqual([
      "@alice",
      "@org/ttnn-team",
      "@bob",
    ]);
  });
});

describe("recommended workflows", () => {
  it("puts the failed workflow first, then the map's matches, each once", () => {
    const map = [
      { paths: ["ttnn/**"], workflows: ["ttnn-unit-tests", "All post-commit tests"] },
      { paths: ["docs/**"], workflows: ["docs"] },
    ];
    expect(recommendWorkflows(["ttnn/cpp/op.cpp"], map, "All post-commit tests")).toEqual([
      { workflow: "All post-commit tests", because: "the workflow that failed" },
      { workflow: "ttnn-unit-tests", because: "changes `ttnn/cpp/op.cpp`" },
    ]);
    expect(recommendWorkflows(["src/x.c"], map)).toEqual([]);
  });
});
