"""A stand-in for `gcloud builds submit --config FILE [--substitutions=K=V,...] SOURCE`: what the
real one uploads, and Cloud Build's first step run on that upload.

The upload follows `gcloud topic gcloudignore`: SOURCE/.gcloudignore if there is one, else
gcloud's default (`.gcloudignore`, `.git`, `.gitignore`, and `#!include:.gitignore` when a
.gitignore exists); gitignore syntax, the last matching pattern wins, `!` re-includes, a
pattern without a slash matches a name at any depth, a trailing slash only directories, and
nothing under an ignored directory is uploaded. The upload is copied to a fresh /workspace-like
folder, where the build config's step `image-tag` runs as Cloud Build would run its `script`:
with every substitution as an environment variable (options.automapSubstitutions) and the
built-in ones a manual build has (PROJECT_ID; COMMIT_SHA empty: no trigger, no commit).

Usage (through a `gcloud` wrapper on PATH): gcloud builds submit --config .ci/cloudbuild.yaml
--substitutions=_A=x,_B=y . ; environment STANDIN_WORKSPACE names the folder to build in, and
STANDIN_PROJECT the project. Exit status: the step's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import yaml

DEFAULT_IGNORE = [".gcloudignore", ".git", ".gitignore"]
STEP = "image-tag"


def ignore_patterns(source: str) -> list[str]:
    own = os.path.join(source, ".gcloudignore")
    if os.path.exists(own):
        lines = open(own).read().splitlines()
    else:
        lines = DEFAULT_IGNORE + (
            ["#!include:.gitignore"] if os.path.exists(os.path.join(source, ".gitignore")) else []
        )
    patterns = []
    for line in lines:
        if line.startswith("#!include:"):
            included = os.path.join(source, line.split(":", 1)[1].strip())
            patterns += [entry for entry in open(included).read().splitlines() if entry and not entry.startswith("#")]
        elif line.strip() and not line.startswith("#"):
            patterns.append(line.rstrip())
    return patterns


def _regex(pattern: str) -> re.Pattern:
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(("" if anchored else "(?:.*/)?") + out + "$")


def ignored(path: str, is_dir: bool, patterns: list[str]) -> bool:
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern.replace("\\!", "!", 1)
        dir_only = body.endswith("/")
        body = body.rstrip("/")
        if dir_only and not is_dir:
            continue
        if _regex(body).match(path):
            verdict = not negate
    return verdict


def upload(source: str, destination: str) -> list[str]:
    patterns = ignore_patterns(source)
    uploaded = []
    for root, dirs, files in os.walk(source):
        relative_root = os.path.relpath(root, source)
        relative_root = "" if relative_root == "." else relative_root + "/"
        dirs[:] = [d for d in dirs if not ignored(relative_root + d, True, patterns)]
        for name in files:
            path = relative_root + name
            if not ignored(path, False, patterns):
                os.makedirs(os.path.join(destination, relative_root), exist_ok=True)
                shutil.copy2(os.path.join(source, path), os.path.join(destination, path), follow_symlinks=False)
                uploaded.append(path)
    return uploaded


def substitute(value: str, values: dict[str, str]) -> str:
    # options.dynamicSubstitutions: ${NAME} is replaced in substitution values too.
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), ""), value)


def main(argv: list[str]) -> int:
    if argv[:2] != ["builds", "submit"]:
        print(f"gcloud stand-in: only 'builds submit' is known, not {argv[:2]}", file=sys.stderr)
        return 2
    config, given, source = None, {}, None
    args = iter(argv[2:])
    for arg in args:
        if arg == "--config":
            config = next(args, None)
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif arg.startswith("--substitutions="):
            given = dict(pair.split("=", 1) for pair in arg.split("=", 1)[1].split(","))
        elif arg.startswith("--"):
            print(f"gcloud stand-in: unknown flag {arg}", file=sys.stderr)
            return 2
        else:
            source = arg
    if not config or not source:
        print("gcloud stand-in: usage: builds submit --config FILE [--substitutions=...] SOURCE", file=sys.stderr)
        return 2
    workspace = os.environ["STANDIN_WORKSPACE"]
    uploaded = upload(source, workspace)
    with open(os.path.join(workspace, ".standin-uploaded"), "w") as handle:
        handle.write("\n".join(sorted(uploaded)))
    build = yaml.safe_load(open(os.path.join(source, config)))
    builtins = {
        "PROJECT_ID": os.environ.get("STANDIN_PROJECT", "demo-project"),
        "COMMIT_SHA": "",
        "BUILD_ID": "standin",
    }
    values = dict(builtins)
    for key, value in build.get("substitutions", {}).items():
        values[key] = substitute(str(given.get(key, value)), builtins)
    for key, value in given.items():
        values.setdefault(key, value)
    (step,) = [step for step in build["steps"] if step.get("id") == STEP]
    script = os.path.join(workspace, ".standin-step.sh")
    with open(script, "w") as handle:
        handle.write(step["script"])
    env = {**os.environ, **values}
    return subprocess.run(["bash", script], cwd=workspace, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
