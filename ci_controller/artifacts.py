"""The files a job keeps: `junit.xml` always, plus what the submit's patterns match.

The workspace is an in-memory file system that goes when the container stops, so the files
are gathered inside the container before that, and taken out after:

1. Our pytest plugin (`job_plugin/_ci_junitxml.py`) writes `junit.xml` into `OUTPUT_DIR`, a
   directory at the container's root outside the workspace (the project tar creates it, owned
   by the job user), on the container's writable layer.
2. When the job ends, for any reason, PID 1 (`COLLECT_SOURCE`, run by the bootstrap) copies
   the regular files the patterns match inside the workspace (`glob`, `**` recursive;
   symlinks leading out of it are skipped) into `OUTPUT_DIR/files`, in pattern order, as long
   as everything kept stays within the per-job cap (`CI_MAX_ARTIFACTS_MB`, `junit.xml`
   included), and writes `MANIFEST` naming what did not fit and the patterns that matched
   nothing.
3. When it all comes to at most `INLINE_OUTPUT_BYTES`, PID 1 sends `OUTPUT_DIR` as a tar in
   its output, just before its last word (`FILES_CHANNEL`). Otherwise the controller, once
   PID 1 said the files are gathered, reads `OUTPUT_DIR` with the engine's archive API into a
   temporary file (cut off a little past the cap, whatever the tests left there). Either way
   it stores each file in the database (`kept_files`) and writes the manifest's news into
   the log.

The cap is enforced twice: PID 1 copies no more than fits (so the engine's disk holds at most
that), and the controller stores no more (the tests run as the same user and could write into
the directory themselves).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, cast

OUTPUT_DIR = ".ci-output"
"""At the container's root; created by the project tar."""
JUNIT_NAME = "junit.xml"
FILES_DIR = "files"
MANIFEST = "manifest.json"

COLLECT_SOURCE = """
def collect_artifacts(job_file, workdir, output):
    import glob, shutil
    if not os.path.isdir(output):
        return
    try:
        with open(job_file) as file:
            request = json.load(file)
    except (OSError, ValueError):
        return
    cap = int(request.get("artifact_bytes", 0))
    workdir = os.path.realpath(workdir)
    files = os.path.join(output, "files")
    junit = os.path.join(output, "junit.xml")
    used = os.path.getsize(junit) if os.path.isfile(junit) else 0
    seen, left_out, unmatched = set(), [], []
    for pattern in request.get("artifacts", []):
        matched = False
        for name in sorted(glob.glob(pattern, root_dir=workdir, recursive=True)):
            source = os.path.realpath(os.path.join(workdir, name))
            if not source.startswith(workdir + "/") or not os.path.isfile(source):
                continue
            matched = True
            if name in seen:
                continue
            seen.add(name)
            size = os.path.getsize(source)
            if used + size > cap:
                left_out.append([name, size])
                continue
            target = os.path.join(files, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
            used += size
        if not matched:
            unmatched.append(pattern)
    with open(os.path.join(output, "manifest.json"), "w") as file:
        json.dump({"left_out": left_out, "unmatched": unmatched}, file)


def pack_output(output, limit):
    if not os.path.isdir(output):
        return b""
    total = 0
    for folder, _, names in os.walk(output):
        for name in names:
            total += os.lstat(os.path.join(folder, name)).st_size
            if total > limit:
                return b""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(output, arcname=os.path.basename(output))
    return base64.b64encode(buffer.getvalue())
"""
"""PID 1's part, defined in the bootstrap (which has `base64`, `io`, `json`, `os` and
`tarfile` imported) and called once the job has ended: `collect_artifacts`, then
`pack_output`, which makes `OUTPUT_DIR` the tar the archive API would have given, in base64 for
PID 1's output, if it holds at most `INLINE_OUTPUT_BYTES` (else b"")."""
INLINE_OUTPUT_BYTES = 256 * 1024
"""The most PID 1 sends in its output (`container_output.FILES_CHANNEL`, 4/3 of it in
base64) rather than leaving to the archive API: a `junit.xml` and small kept files, which
then cost no copy (Docker extracts an archive in a process of its own, ~60 ms) after the
tests."""


@dataclass
class Manifest:
    """What PID 1 reported beside the files: what did not fit, and patterns without a file."""

    left_out: list[tuple[str, int]] = field(default_factory=lambda: list[tuple[str, int]]())
    unmatched: list[str] = field(default_factory=lambda: list[str]())


@dataclass(frozen=True)
class KeptFile:
    path: str
    size: int
    content: IO[bytes]


def artifact_path(member: str) -> str | None:
    """The stored path of a tar member of `OUTPUT_DIR` (`junit.xml`, or a file's path in the
    workspace), or None for anything else."""
    name = posixpath.normpath(member)
    prefix = f"{OUTPUT_DIR}/"
    if not name.startswith(prefix):
        return None
    name = name[len(prefix) :]
    if name == JUNIT_NAME:
        return JUNIT_NAME
    if not name.startswith(f"{FILES_DIR}/"):
        return None
    path = name[len(FILES_DIR) + 1 :]
    if not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return path


def kept_files(
    archive: tarfile.TarFile, *, max_bytes: int, manifest: Manifest
) -> Iterator[KeptFile]:
    """The files of `OUTPUT_DIR`'s tar (read as a stream) that fit within `max_bytes`, ours
    first as PID 1 wrote them; what does not fit, or collides with `junit.xml`, goes into
    `manifest.left_out`. A tar cut short (the copy was capped) ends the files quietly."""
    used = 0
    seen: set[str] = set()
    try:
        for member in archive:
            if member.isfile() and posixpath.normpath(member.name) == f"{OUTPUT_DIR}/{MANIFEST}":
                _read_manifest(archive, member, manifest)
                continue
            path = artifact_path(member.name) if member.isfile() else None
            if path is None:
                continue
            if path in seen:
                continue  # a workspace file named junit.xml: ours wins
            if used + member.size > max_bytes:
                manifest.left_out.append((path, member.size))
                continue
            content = archive.extractfile(member)
            if content is None:
                continue
            seen.add(path)
            used += member.size
            yield KeptFile(path=path, size=member.size, content=content)
    except (tarfile.ReadError, EOFError):
        return


def _read_manifest(archive: tarfile.TarFile, member: tarfile.TarInfo, manifest: Manifest) -> None:
    content = archive.extractfile(member)
    if content is None or member.size > 1024 * 1024:
        return
    try:
        found = cast(dict[str, list[object]], json.loads(content.read()))
        left_out = cast(list[list[object]], found.get("left_out", []))
        manifest.left_out.extend((str(item[0]), int(cast(int, item[1]))) for item in left_out)
        manifest.unmatched.extend(str(item) for item in found.get("unmatched", []))
    except (ValueError, TypeError, IndexError, AttributeError):
        return


def notes(manifest: Manifest, *, max_bytes: int) -> list[str]:
    """The log's lines about what was not kept."""
    lines: list[str] = []
    if manifest.unmatched:
        patterns = ", ".join(repr(pattern) for pattern in manifest.unmatched)
        lines.append(f"artifacts: no file matched {patterns}")
    if manifest.left_out:
        shown = ", ".join(f"{path} ({size} bytes)" for path, size in manifest.left_out[:10])
        more = len(manifest.left_out) - 10
        lines.append(
            f"artifacts: {len(manifest.left_out)} file(s) not kept, over the "
            f"{max_bytes / (1024 * 1024):g} MiB per job (CI_MAX_ARTIFACTS_MB): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    return lines
