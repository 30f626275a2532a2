"""The corpus of bad uploads: each gets its 4xx with a detail naming the problem, and none of
them leaves a job (or an archive) behind."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from ci_persistence import SqliteRepository

from .conftest import Account, project_zip, zip_upload

MIB = 1024 * 1024  # the test settings allow 1 MiB archives, 2 MiB unpacked, 50 entries


def build_zip(write: Callable[[zipfile.ZipFile], None]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            write(archive)
    return buffer.getvalue()


def with_requirements(*entries: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    def write(archive: zipfile.ZipFile) -> None:
        archive.writestr("requirements.txt", "pytest\n")
        for info, data in entries:
            archive.writestr(info, data)

    return build_zip(write)


def special(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info


def with_an_encrypted_entry() -> bytes:
    """zipfile cannot write encrypted entries: set the flag in both headers by hand."""
    data = bytearray(with_requirements(("secret.py", b"x")))
    [info] = [i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename == "secret.py"]
    data[info.header_offset + 6] |= 0x1  # local header: general purpose flags
    central = data.rindex(b"PK\x01\x02")  # the last record is the last entry's: secret.py
    data[central + 8] |= 0x1
    return bytes(data)


def stored_noise(size: int) -> bytes:
    """A zip that cannot compress: its size on the wire is about `size`."""
    import random

    noise = random.Random(7).randbytes(size)

    def write(archive: zipfile.ZipFile) -> None:
        archive.writestr("requirements.txt", "pytest\n")
        archive.writestr("data.bin", noise, compress_type=zipfile.ZIP_STORED)

    return build_zip(write)


def lying_about_its_size() -> bytes:
    """A zip bomb that declares 100 bytes for an entry holding 3 MiB of zeros."""

    def write(archive: zipfile.ZipFile) -> None:
        archive.writestr("bomb.txt", b"\0" * (3 * MIB))
        archive.writestr("requirements.txt", "pytest\n")

    data = bytearray(build_zip(write))
    assert data[:4] == b"PK\x03\x04"
    struct.pack_into("<I", data, 22, 100)  # local header of the first entry: uncompressed size
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)  # its central directory record
    return bytes(data)


def many_entries(count: int) -> bytes:
    return with_requirements(*((f"file{i}.py", b"") for i in range(count)))


def project_in_a_folder() -> bytes:
    def write(archive: zipfile.ZipFile) -> None:
        archive.writestr("myproj/requirements.txt", "pytest\n")
        archive.writestr("myproj/test_a.py", "def test_a(): pass\n")

    return build_zip(write)


BAD_UPLOADS = [
    pytest.param(b"", 400, "the upload is empty", id="empty"),
    pytest.param(b"definitely not a zip", 400, "not a valid zip archive", id="not-a-zip"),
    pytest.param(project_zip()[:-30], 400, "not a valid zip archive", id="truncated"),
    pytest.param(
        stored_noise(MIB + 30_000),
        413,
        "the archive is 1.03 MiB, over the 1 MiB limit",
        id="too-big",
    ),
    pytest.param(stored_noise(3 * MIB), 413, "over the 1 MiB limit", id="far-too-big"),
    pytest.param(
        with_requirements(("zeros.bin", b"\0" * (3 * MIB))),
        413,
        "unpacks to more than 2 MiB",
        id="zip-bomb-total",
    ),
    pytest.param(
        with_requirements(*((f"z{i}.bin", b"\0" * (MIB // 2)) for i in range(5))),
        413,
        "unpacks to more than 2 MiB",
        id="zip-bomb-many-parts",
    ),
    pytest.param(lying_about_its_size(), 400, "lies about its size", id="zip-bomb-lying-size"),
    pytest.param(many_entries(60), 413, "61 entries, over the limit of 50", id="too-many-entries"),
    pytest.param(
        with_requirements(("/etc/evil.py", b"x")), 422, "absolute path", id="absolute-path"
    ),
    pytest.param(with_requirements(("C:/evil.py", b"x")), 422, "absolute path", id="windows-drive"),
    pytest.param(with_requirements(("../evil.py", b"x")), 422, "`..`", id="dot-dot"),
    pytest.param(with_requirements(("a/../../evil.py", b"x")), 422, "`..`", id="nested-dot-dot"),
    pytest.param(
        with_requirements((special("link", stat.S_IFLNK), b"/etc/passwd")),
        422,
        "is a symlink",
        id="symlink",
    ),
    pytest.param(
        with_requirements((special("fifo", stat.S_IFIFO), b"")),
        422,
        "special file",
        id="fifo",
    ),
    pytest.param(
        with_requirements((special("dev", stat.S_IFCHR), b"")),
        422,
        "special file",
        id="device",
    ),
    pytest.param(
        with_requirements(("test_a.py", b"a"), ("test_a.py", b"b")),
        422,
        "twice",
        id="duplicate-entry",
    ),
    pytest.param(
        with_requirements(("sub\\file.py", b"x")), 422, "contains a backslash", id="backslash"
    ),
    pytest.param(with_requirements((".", b"")), 422, "`.` path component", id="bare-dot"),
    pytest.param(with_requirements(("./", b"")), 422, "`.` path component", id="bare-dot-dir"),
    pytest.param(with_requirements(("a/./b.py", b"")), 422, "`.` path component", id="inner-dot"),
    pytest.param(
        with_requirements(("a//b.py", b"")), 422, "empty or `.` path component", id="empty-part"
    ),
    pytest.param(
        with_requirements(("x" * 300 + ".py", b"")),
        422,
        "has a name of 303 bytes, over the 255 Linux allows; shorten it",
        id="long-name",
    ),
    pytest.param(
        with_requirements(("/".join(["d" * 250] * 17) + "/a.py", b"")),
        422,
        "is a path of 4271 bytes, over the 4084 Linux allows",
        id="long-path",
    ),
    pytest.param(
        with_requirements(("new\nline.py", b"")),
        422,
        "contains a control character",
        id="control-character",
    ),
    pytest.param(
        with_requirements(("pkg", b""), ("pkg/test_a.py", b"")),
        422,
        "'pkg' is both a file and a directory",
        id="file-and-directory",
    ),
    pytest.param(
        build_zip(lambda archive: archive.writestr("requirements.txt", b"#" * (MIB + 1))),
        422,
        "'requirements.txt' is 1048577 bytes, over the 1048576 a manifest may have",
        id="huge-manifest",
    ),
    pytest.param(
        with_an_encrypted_entry(),
        422,
        "is encrypted; upload an archive without a password",
        id="encrypted",
    ),
    pytest.param(
        project_in_a_folder(),
        422,
        "found myproj/requirements.txt: zip the contents of myproj/",
        id="wrapped-in-a-folder",
    ),
    pytest.param(
        build_zip(lambda archive: archive.writestr("empty/", "")),
        422,
        "the archive holds no files",
        id="only-a-directory",
    ),
]


@pytest.mark.parametrize("endpoint", ["/submit", "/submit-stream", "/submit-async"])
@pytest.mark.parametrize(("upload", "status", "fragment"), BAD_UPLOADS)
async def test_bad_upload_is_rejected_and_leaves_nothing(
    api: httpx.AsyncClient,
    repo: SqliteRepository,
    alice: Account,
    endpoint: str,
    upload: bytes,
    status: int,
    fragment: str,
) -> None:
    response = await api.post(endpoint, headers=alice.headers, files=zip_upload(upload))

    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert fragment in detail
    assert len(detail) < 300, "an error about a long name must stay short"
    assert await repo.list_jobs() == []


async def test_missing_file_field_says_how_to_send_it(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    response = await api.post(
        "/submit-async", headers=alice.headers, files={"archive": ("p.zip", project_zip())}
    )
    assert response.status_code == 422
    assert "multipart form field `file`" in response.json()["detail"]
    assert await repo.list_jobs() == []


async def test_a_body_growing_past_the_limit_is_cut_off(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    """No Content-Length (chunked): the cap acts while the body arrives."""
    upload = stored_noise(3 * MIB)
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    body = head + upload + f"\r\n--{boundary}--\r\n".encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await api.post(
        "/submit-async",
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert response.status_code == 413
    assert "over the 1 MiB limit" in response.json()["detail"]
    assert await repo.list_jobs() == []


async def test_an_upload_just_under_the_limits_is_accepted(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    upload = with_requirements(
        ("data.bin", b"\0" * (2 * MIB - 100)), *((f"t{i}.py", b"") for i in range(48))
    )
    response = await api.post("/submit-async", headers=alice.headers, files=zip_upload(upload))
    assert response.status_code == 202, response.text
    assert len(await repo.list_jobs()) == 1


async def test_a_project_that_declares_no_dependencies_is_accepted(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    """Neither requirements.txt nor pyproject.toml: it runs on the job image as is."""
    upload = build_zip(lambda archive: archive.writestr("test_a.py", "def test_a(): pass\n"))
    response = await api.post("/submit-async", headers=alice.headers, files=zip_upload(upload))
    assert response.status_code == 202, response.text
    [job] = await repo.list_jobs()
    assert await repo.get_archive(job.id) == upload


async def test_long_unicode_and_spaced_names_the_controller_can_unpack_are_accepted(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    """The other side of the shared rules: what is legal on Linux is not refused (the e2e
    tests run such a project)."""
    names = [
        "n" * 251 + ".txt",
        "/".join(["d" * 250] * 15) + "/deep.txt",
        "données/ünïcode 名前.txt",
        "with spaces/a b c.txt",
        "a:b.txt",
        "..not-a-parent.txt",
    ]
    upload = with_requirements(*((name, b"x") for name in names))
    response = await api.post("/submit-async", headers=alice.headers, files=zip_upload(upload))
    assert response.status_code == 202, response.text
    [job] = await repo.list_jobs()
    assert await repo.get_archive(job.id) == upload


async def test_an_accepted_upload_is_stored_byte_for_byte(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    """Stored in blocks from the spooled upload, read back in blocks by the controller."""
    upload = stored_noise(MIB - 10_000)
    response = await api.post("/submit-async", headers=alice.headers, files=zip_upload(upload))
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert await repo.get_archive(job_id) == upload
    copied = io.BytesIO()
    assert await repo.copy_archive(job_id, copied)
    assert copied.getvalue() == upload
    assert (await repo.get_job(job_id)).archive_bytes == len(upload)
