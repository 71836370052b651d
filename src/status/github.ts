import type { ProbotOctokit } from "probot";
import { upsertStatusComment } from "./comment.js";
import type { StatusView } from "./model.js";
import { renderStatus } from "./render.js";
import { issueRefOf, type StatusSink, type StatusSinkFactory, type StatusTarget } from "./sink.js";

/** Installation-scoped GitHub access for a sink; asked for on the first write, not before. */
export type OctokitSource = (installationId: number) => ProbotOctokit | Promise<ProbotOctokit>;

/**
 * The status sink as one GitHub comment per target: renders the view and edits the comment
 * (the id it knows, else the one found by its marker, else a new one). It remembers the id for
 * its next write. It does not serialize writes itself: one StatusReporter per job does.
 */
export class GitHubStatusSink implements StatusSink {
  #commentId: number | null;
  #octokit: Promise<ProbotOctokit> | null = null;

  constructor(
    private readonly octokitFor: OctokitSource,
    readonly target: StatusTarget,
  ) {
    this.#commentId = target.commentId ?? null;
  }

  /** The comment written last (null before the first write). GitHub-only: not part of the port. */
  get commentId(): number | null {
    return this.#commentId;
  }

  async write(view: StatusView): Promise<void> {
    this.#octokit ??= Promise.resolve(this.octokitFor(this.target.installationId));
    let octokit: ProbotOctokit;
    try {
      octokit = await this.#octokit;
    } catch (err) {
      // No token now (GitHub trouble): the next write asks again.
      this.#octokit = null;
      throw err;
    }
    this.#commentId = await upsertStatusComment(
      octokit,
      issueRefOf(this.target),
      renderStatus(view),
      this.#commentId,
    );
  }
}

/** A sink factory over GitHub: one GitHubStatusSink per target. */
export function githubStatusSinks(octokitFor: OctokitSource): StatusSinkFactory {
  return (target) => new GitHubStatusSink(octokitFor, target);
}
