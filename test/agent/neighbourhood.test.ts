import { describe, expect, it } from "vitest";
import {
  type FixDiff,
  isTestFile,
  parseNameStatus,
  parsePatch,
  pytestSections,
  weakeningReason,
  weakenings,
} from "../../src/agent/phases/neighbourhood.js";

const diff = (d: Partial<FixDiff>): FixDiff => ({ entries: [], added: {}, removed: {}, ...d });
const modified = (path: string, added: string[], removed: string[] = []): FixDiff =>
  diff({ entries: [{ status: "M", path }], added: { [path]: added }, removed: { [path]: removed } });

describe("the test neighbourhood check", () => {
  it("accepts an ordinary source fix", () => {
    expect(weakenings(modified("src/calc.py", ["    return a + b"], ["    return a - b"]))).toEqual([]);
    expect(weakenings(modified("src/model.py", ["    model.fit(x, y)"]))).toEqual([]);
    expect(weakenings(modified("CMakeLists.txt", ["add_library(calc calc.cpp)"]))).toEqual([]);
    expect(weakenings(diff({ entries: [{ status: "D", path: "src/old_helper.py" }] }))).toEqual([]);
  });

  it.each([
    ["tests/test_a.py", "@pytest.mark.skip(reason='flaky')"],
    ["tests/test_a.py", "@pytest.mark.skipif(True, reason='x')"],
    ["tests/test_a.py", "@pytest.mark.xfail"],
    ["tests/test_a.py", "    pytest.skip('later')"],
    ["tests/test_a.py", "@unittest.skip('no')"],
    ["tests/test_a.py", "        self.skipTest('no')"],
    ["tests/test_a.cpp", '  GTEST_SKIP() << "later";'],
    ["tests/test_a.cpp", "TEST(Calc, DISABLED_Adds) {"],
    ["src/a.test.ts", "it.skip('adds', () => {"],
    ["src/a.test.ts", "describe.skip('calc', () => {"],
    ["src/a.test.ts", "test.only('one', () => {})"],
    ["src/a.spec.js", "xit('adds', () => {"],
    ["src/lib.rs", "#[ignore]"],
    ["calc_test.go", '\tt.Skip("later")'],
    ["src/test/java/CalcTest.java", "  @Disabled"],
    ["tests/CMakeLists.txt", "set_tests_properties(calc PROPERTIES WILL_FAIL TRUE)"],
  ])("refuses a new marker in %s: %s", (path, line) => {
    const found = weakenings(modified(path, [line]));
    expect(
      found.some((f) => f.startsWith("adds ") && f.includes(`in ${path}`)),
      found.join("; "),
    ).toBe(true);
  });

  it("refuses deleting or renaming a test file", () => {
    expect(weakenings(diff({ entries: [{ status: "D", path: "tests/test_calc.py" }] }))).toEqual([
      "deletes the test file tests/test_calc.py",
    ]);
    expect(
      weakenings(
        diff({ entries: [{ status: "R100", path: "tests/old_calc.py.bak", from: "tests/test_calc.py" }] }),
      ),
    ).toEqual(["renames the test file tests/test_calc.py to tests/old_calc.py.bak"]);
    expect(isTestFile("src/calc.test.ts")).toBe(true);
    expect(isTestFile("pkg/calc_test.go")).toBe(true);
    expect(isTestFile("src/calc.py")).toBe(false);
  });

  it("refuses test configuration changes", () => {
    const changed = (path: string) => weakenings(modified(path, ["x"]));
    expect(changed("pytest.ini")[0]).toContain("pytest.ini");
    expect(changed("tests/conftest.py")[0]).toContain("conftest.py");
    expect(changed(".github/workflows/ci.yml")[0]).toContain("CI workflow");
    expect(changed("build/CTestTestfile.cmake")[0]).toContain("CTest");
    expect(changed("vitest.config.ts")[0]).toContain("test runner config");
    expect(
      weakenings(modified("tests/CMakeLists.txt", [], ["add_test(NAME calc COMMAND calc_test)"]))[0],
    ).toContain("CMake test list");
    expect(weakenings(modified("CMakeLists.txt", [], ["add_subdirectory(tests)"]))[0]).toContain(
      "CMake test list",
    );
  });

  it("refuses a changed pytest section of setup.cfg or pyproject.toml, not other sections", () => {
    const cfg = (old: string, now: string, path = "setup.cfg") =>
      weakenings(
        diff({
          entries: [{ status: "M", path }],
          added: { [path]: ["x"] },
          texts: { [path]: { old, new: now } },
        }),
      );
    const base = "[metadata]\nname = calc\n\n[tool:pytest]\naddopts = -q\n";
    expect(cfg(base, base.replace("name = calc", "name = calc2"))).toEqual([]);
    expect(cfg(base, base.replace("-q", "-q --deselect tests/test_calc.py"))).toEqual([
      "changes the pytest settings in setup.cfg",
    ]);
    const toml = '[project]\nname = "calc"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n';
    expect(cfg(toml, toml.replace('"calc"', '"calc2"'), "pyproject.toml")).toEqual([]);
    expect(cfg(toml, `${toml}testpaths = ["src"]\n`, "pyproject.toml")).toHaveLength(1);
    expect(pytestSections("tox.ini", "[pytest]\naddopts=-x\n[flake8]\nmax=1\n")).toBe("[pytest]\naddopts=-x");
    // Without the texts, a change to such a file is refused to be safe.
    expect(weakenings(modified("pyproject.toml", ["x"]))[0]).toContain("may hold pytest settings");
  });

  it("reads git's name-status and patch output", () => {
    expect(parseNameStatus("M\0src/a.py\0R087\0tests/test_a.py\0tests/a.py\0D\0tests/test_b.py\0")).toEqual([
      { status: "M", path: "src/a.py" },
      { status: "R087", path: "tests/a.py", from: "tests/test_a.py" },
      { status: "D", path: "tests/test_b.py" },
    ]);
    const patch = [
      "diff --git a/src/a.py b/src/a.py",
      "index 1..2 100644",
      "--- a/src/a.py",
      "+++ b/src/a.py",
      "@@ -1 +1 @@",
      "-    return a - b",
      "+    return a + b",
      "+++ this added line starts with two pluses",
      "diff --git a/tests/test_b.py b/tests/test_b.py",
      "deleted file mode 100644",
      "--- a/tests/test_b.py",
      "+++ /dev/null",
      "@@ -1 +0,0 @@",
      "-def test_b(): pass",
    ].join("\n");
    expect(parsePatch(patch)).toEqual({
      added: { "src/a.py": ["    return a + b", "++ this added line starts with two pluses"] },
      removed: { "src/a.py": ["    return a - b"], "tests/test_b.py": ["def test_b(): pass"] },
    });
    expect(weakeningReason(["deletes the test file x"])).toContain("change the code under test instead");
  });
});
