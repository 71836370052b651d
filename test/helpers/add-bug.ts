import { calls, type FakeStep, tool } from "./fake-anthropic.js";

/**
 * The small known bug the end-to-end tests fix: add.sh subtracts. And a scripted model
 * session that reproduces it in `testDir`, fixes it and finishes each phase.
 */

export const ADD_BUGGY = "#!/usr/bin/env bash\n# Prints the sum of two integers.\necho $(( $1 - $2 ))\n";

/** Phase 1: read the code, write the test folder, finish with its command. */
export function addBugReproduce(testDir: string): FakeStep[] {
  return [
    calls(tool("read_file", { path: "src/add.sh" })),
    calls(
      tool("write_file", {
        path: `${testDir}/tests/test_add.sh`,
        content:
          'out=$(bash src/add.sh 2 3)\n[ "$out" = 5 ] || { echo "expected 5, got $out"; exit 1; }\necho ok\n',
      }),
      tool("write_file", { path: `${testDir}/README.md`, content: "# add\nShows that add.sh subtracts.\n" }),
      tool("write_file", {
        path: `${testDir}/run_test.sh`,
        content: `#!/usr/bin/env bash\ncd "$(dirname "$0")/../.."\nexec bash ${testDir}/tests/test_add.sh\n`,
        executable: true,
      }),
    ),
    calls(
      tool("finish", {
        test_dir: testDir,
        command: `bash ${testDir}/run_test.sh`,
        failure_mode: "add.sh prints 2-3 instead of 2+3",
      }),
    ),
  ];
}

/** Phase 2: the one-character fix, a check, and the finish with the summary. */
export function addBugFix(testDir: string): FakeStep[] {
  return [
    calls(tool("edit_file", { path: "src/add.sh", old_string: "$1 - $2", new_string: "$1 + $2" })),
    calls(tool("run_command", { command: `bash ${testDir}/run_test.sh` })),
    calls(
      tool("finish", {
        summary: "add.sh adds instead of subtracting.",
        root_cause: "The arithmetic expansion in add.sh used minus where the sum needs plus.",
        changes: "src/add.sh: `$1 - $2` became `$1 + $2`.",
        performance: "None: one arithmetic expansion.",
      }),
    ),
  ];
}

export function addBugSession(testDir: string): FakeStep[] {
  return [...addBugReproduce(testDir), ...addBugFix(testDir)];
}
