"""The real `huggingface_hub` client (2.x and 0.x) against a real modelyard server.

See ../../../shared/docs/hf-hub-api.md for the HTTP contract each test relies on. Nothing here
imports huggingface_hub at module level: the `hf` fixture imports it after HF_ENDPOINT is set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

HEX40 = re.compile(r"^[0-9a-f]{40}$")
BIG_SIZE = 50 * 1024 * 1024
UNICODE_NAME = "data dir/naïve file ü €.txt"


# --- helpers ----------------------------------------------------------------------------------------
def uid() -> str:
    return uuid.uuid4().hex[:10]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_tree(folder: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".cache" not in p.relative_to(folder).parts:
            out[p.relative_to(folder).as_posix()] = p.read_bytes()
    return out


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def http_status(exc: BaseException) -> int | None:
    resp = getattr(exc, "response", None)
    return getattr(resp, "status_code", None)


def raw(server, method: str, path: str, token: str | None = None, headers: dict | None = None,
        body: bytes | None = None):
    """A plain urllib request, for checks the client does not expose (headers, Range, Link)."""
    url = path if path.startswith("http") else server.url + path
    req = urllib.request.Request(url, method=method, data=body, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def entry_not_found_cls(hf):
    """2.x raises RemoteEntryNotFoundError (a subclass of EntryNotFoundError); 0.x EntryNotFoundError."""
    return getattr(hf.errors, "RemoteEntryNotFoundError", hf.errors.EntryNotFoundError)


def assert_remote_entry_not_found(hf, excinfo):
    assert isinstance(excinfo.value, entry_not_found_cls(hf)), repr(excinfo.value)
    assert not isinstance(excinfo.value, hf.errors.LocalEntryNotFoundError), repr(excinfo.value)


def make_private(api, hf_major, repo_id, private: bool, repo_type=None):
    if hf_major >= 1:
        api.update_repo_settings(repo_id, visibility="private" if private else "public", repo_type=repo_type)
    else:
        api.update_repo_visibility(repo_id, private=private, repo_type=repo_type)


# --- shared model repo --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_repo(hf, api, alice, tmp_path_factory):
    """alice/<m-uid>: README with front matter, JSON config, nested folders, unicode name, 50 MB binary."""
    tag = f"card-tag-{uid()}"
    name = f"m-{uid()}"
    repo_id = f"{alice[0]}/{name}"
    readme = (
        "---\n"
        "license: mit\n"
        "library_name: modelyard-test\n"
        f"tags:\n- {tag}\n- test\n"
        "---\n\n# Test model\n\nUploaded by the huggingface_hub compatibility tests.\n"
    ).encode()
    big = os.urandom(BIG_SIZE)
    files = {
        "README.md": readme,
        "config.json": json.dumps({"hidden_size": 8, "name": name}, indent=2).encode(),
        "nested/a.txt": b"hello from nested/a.txt\n",
        "nested/deeper/weights.txt": b"0.1 0.2 0.3\n" * 100,
        "nested/deeper/tiny.bin": bytes(range(256)) * 16,
        UNICODE_NAME: "unicode content ✓\n".encode(),
        "big/model.bin": big,
    }
    folder = tmp_path_factory.mktemp("model-src")
    write_tree(folder, files)
    url = api.create_repo(repo_id)
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Initial upload")
    return {"repo_id": repo_id, "name": name, "files": files, "folder": folder, "commit": info.oid,
            "commit_info": info, "tag": tag, "url": url}


# --- create_repo ---------------------------------------------------------------------------------------
def test_create_repo_exist_ok_and_private(hf, api, server, alice):
    repo_id = f"{alice[0]}/create-{uid()}"
    url = api.create_repo(repo_id)
    assert isinstance(url, hf.RepoUrl)
    assert url.repo_id == repo_id
    assert url.endpoint == server.url
    assert str(url) == f"{server.url}/{repo_id}"
    assert api.repo_exists(repo_id)
    info = api.model_info(repo_id)
    assert info.id == repo_id
    assert HEX40.match(info.sha), info.sha  # HF creates repos with an initial commit
    assert info.private is False

    with pytest.raises(hf.errors.HTTPError) as e:
        api.create_repo(repo_id)
    assert http_status(e.value) == 409
    again = api.create_repo(repo_id, exist_ok=True)
    assert again.repo_id == repo_id and str(again) == str(url)
    assert api.model_info(repo_id).sha == info.sha  # exist_ok does not touch the repo

    priv_id = f"{alice[0]}/private-{uid()}"
    api.create_repo(priv_id, private=True)
    assert api.model_info(priv_id).private is True

    ds_id = f"{alice[0]}/ds-{uid()}"
    ds_url = api.create_repo(ds_id, repo_type="dataset")
    assert str(ds_url) == f"{server.url}/datasets/{ds_id}"
    assert ds_url.repo_type == "dataset"
    assert api.repo_exists(ds_id, repo_type="dataset")
    assert not api.repo_exists(ds_id)  # the model namespace is separate


# --- upload + download ------------------------------------------------------------------------------------
def test_upload_folder_commit_info(model_repo, server):
    info = model_repo["commit_info"]
    assert HEX40.match(info.oid), info.oid
    assert info.commit_url == f"{server.url}/{model_repo['repo_id']}/commit/{info.oid}"
    assert info.commit_message == "Initial upload"


def test_snapshot_download_into_cache_and_local_dir(hf, server, alice, model_repo, cache_dir, tmp_path):
    path = hf.snapshot_download(model_repo["repo_id"], cache_dir=cache_dir, token=alice[1], endpoint=server.url)
    got = read_tree(Path(path))
    assert Path(path).name == model_repo["commit"]  # snapshots/<commit>
    got.pop(".gitattributes", None)
    assert set(got) == set(model_repo["files"])
    for rel, data in model_repo["files"].items():
        assert got[rel] == data, rel

    local = tmp_path / "local"
    path2 = hf.snapshot_download(model_repo["repo_id"], local_dir=local, token=alice[1], endpoint=server.url)
    got2 = read_tree(Path(path2))
    got2.pop(".gitattributes", None)
    assert got2 == model_repo["files"]

    # At the commit sha: served from cache dir, same bytes.
    path3 = hf.snapshot_download(model_repo["repo_id"], revision=model_repo["commit"], cache_dir=cache_dir,
                                 token=alice[1], endpoint=server.url)
    assert Path(path3) == Path(path)


def test_hf_hub_download_main_commit_subfolder_unicode(hf, server, alice, model_repo, cache_dir):
    repo_id, files, commit = model_repo["repo_id"], model_repo["files"], model_repo["commit"]
    kw = dict(cache_dir=cache_dir, token=alice[1], endpoint=server.url)

    p = hf.hf_hub_download(repo_id, "config.json", **kw)
    assert Path(p).read_bytes() == files["config.json"]
    assert f"/snapshots/{commit}/config.json" in Path(p).as_posix()

    p = hf.hf_hub_download(repo_id, "big/model.bin", revision=commit, **kw)
    assert sha256(Path(p).read_bytes()) == sha256(files["big/model.bin"])
    # The cache blob is named after the ETag: sha256 for LFS files.
    assert Path(os.path.realpath(p)).name == sha256(files["big/model.bin"])

    p = hf.hf_hub_download(repo_id, "weights.txt", subfolder="nested/deeper", **kw)
    assert Path(p).as_posix().endswith("nested/deeper/weights.txt")
    assert Path(p).read_bytes() == files["nested/deeper/weights.txt"]

    p = hf.hf_hub_download(repo_id, UNICODE_NAME, **kw)
    assert Path(p).read_bytes() == files[UNICODE_NAME]
    assert Path(p).name == "naïve file ü €.txt"

    p = hf.hf_hub_download(repo_id, "nested/a.txt", revision=commit, local_dir=cache_dir / "ld",
                           token=alice[1], endpoint=server.url)
    assert Path(p) == cache_dir / "ld" / "nested" / "a.txt"
    assert Path(p).read_bytes() == files["nested/a.txt"]


def test_file_metadata_etag_and_commit_headers(hf, server, alice, model_repo):
    repo_id, files, commit = model_repo["repo_id"], model_repo["files"], model_repo["commit"]
    url = hf.hf_hub_url(repo_id, "config.json", endpoint=server.url)
    meta = hf.get_hf_file_metadata(url, token=alice[1])
    assert meta.commit_hash == commit
    assert meta.etag == git_blob_sha1(files["config.json"])
    assert meta.size == len(files["config.json"])

    url = hf.hf_hub_url(repo_id, "big/model.bin", revision=commit, endpoint=server.url)
    meta = hf.get_hf_file_metadata(url, token=alice[1])
    assert meta.commit_hash == commit
    assert meta.etag == sha256(files["big/model.bin"])
    assert meta.size == BIG_SIZE
    # With download redirects on (see conftest), LFS content comes from the object store.
    redirected = urllib.parse.urlsplit(meta.location).netloc != urllib.parse.urlsplit(server.url).netloc
    assert redirected == bool(os.environ.get("HF_TESTS_BLOB_STORE")), meta.location


def test_upload_file_and_create_commit_from_bytes(hf, api, server, alice, cache_dir):
    repo_id = f"{alice[0]}/upfile-{uid()}"
    api.create_repo(repo_id)
    data = b"first line\nsecond line\n"
    info = api.upload_file(path_or_fileobj=data, path_in_repo="docs/notes é.txt", repo_id=repo_id,
                           commit_message="add notes")
    assert HEX40.match(info.oid)
    assert api.model_info(repo_id).sha == info.oid
    blob = os.urandom(3 * 1024 * 1024)
    info2 = api.create_commit(repo_id, operations=[
        hf.CommitOperationAdd(path_in_repo="blob.bin", path_or_fileobj=io.BytesIO(blob)),
        hf.CommitOperationAdd(path_in_repo="small.json", path_or_fileobj=b'{"a": 1}'),
    ], commit_message="two files")
    assert info2.oid != info.oid
    kw = dict(cache_dir=cache_dir, token=alice[1], endpoint=server.url)
    assert Path(hf.hf_hub_download(repo_id, "docs/notes é.txt", **kw)).read_bytes() == data
    assert Path(hf.hf_hub_download(repo_id, "blob.bin", **kw)).read_bytes() == blob
    assert Path(hf.hf_hub_download(repo_id, "small.json", **kw)).read_bytes() == b'{"a": 1}'
    assert set(api.list_repo_files(repo_id)) - {".gitattributes"} == {"blob.bin", "docs/notes é.txt", "small.json"}

    # Characters that percent-encoding and naive decoding get wrong: '+', '%', '#', '&', '=', '[', ']'.
    odd = "odd/100% a+b=c&d #1 [x].txt"
    info3 = api.upload_file(path_or_fileobj=b"odd bytes", path_in_repo=odd, repo_id=repo_id)
    info4 = api.upload_file(path_or_fileobj=b"", path_in_repo="empty.txt", repo_id=repo_id)
    assert info4.oid != info3.oid
    assert Path(hf.hf_hub_download(repo_id, odd, **kw)).read_bytes() == b"odd bytes"
    assert Path(hf.hf_hub_download(repo_id, "empty.txt", **kw)).read_bytes() == b""
    assert api.file_exists(repo_id, odd) and not api.file_exists(repo_id, "odd/100%25 a+b=c&d #1 [x].txt")
    assert {e.path for e in api.list_repo_tree(repo_id, path_in_repo="odd")} == {odd}
    assert [e.size for e in api.get_paths_info(repo_id, [odd, "empty.txt"])] in ([9, 0], [0, 9])


def test_reupload_unchanged_makes_no_commit(api, model_repo):
    repo_id = model_repo["repo_id"]
    before = api.model_info(repo_id).sha
    n_commits = len(api.list_repo_commits(repo_id))
    info = api.upload_folder(repo_id=repo_id, folder_path=model_repo["folder"], commit_message="again")
    assert info.oid == before
    assert api.model_info(repo_id).sha == before
    assert len(api.list_repo_commits(repo_id)) == n_commits


# --- info / existence ------------------------------------------------------------------------------------
def test_model_info_and_repo_info(hf, api, alice, model_repo):
    repo_id, files, commit = model_repo["repo_id"], model_repo["files"], model_repo["commit"]
    info = api.model_info(repo_id)
    assert info.id == repo_id
    assert info.sha == commit
    assert info.private is False
    assert info.author in (None, alice[0])
    names = {s.rfilename for s in info.siblings}
    assert set(files) <= names
    assert info.card_data is not None
    assert info.card_data.get("license") == "mit"
    assert model_repo["tag"] in info.card_data.get("tags")
    assert model_repo["tag"] in (info.tags or [])
    for d in (info.last_modified, info.created_at):
        assert isinstance(d, dt.datetime) and d.tzinfo is not None
        assert abs((dt.datetime.now(dt.timezone.utc) - d).total_seconds()) < 3600

    same = api.repo_info(repo_id, revision=commit)
    assert same.sha == commit and isinstance(same, hf.ModelInfo)

    full = api.model_info(repo_id, files_metadata=True)
    by_name = {s.rfilename: s for s in full.siblings}
    for rel, data in files.items():
        assert by_name[rel].size == len(data), rel
    lfs = by_name["big/model.bin"].lfs
    assert lfs is not None and lfs.sha256 == sha256(files["big/model.bin"]) and lfs.size == BIG_SIZE
    assert by_name["config.json"].blob_id == git_blob_sha1(files["config.json"])


def test_repo_exists_and_file_exists(api, anon_api, alice, model_repo):
    repo_id = model_repo["repo_id"]
    assert api.repo_exists(repo_id) is True
    assert anon_api.repo_exists(repo_id) is True
    assert api.repo_exists(f"{alice[0]}/no-such-repo-{uid()}") is False
    assert api.repo_exists(repo_id, repo_type="dataset") is False
    assert api.file_exists(repo_id, "config.json") is True
    assert api.file_exists(repo_id, UNICODE_NAME) is True
    assert api.file_exists(repo_id, "nested/deeper/weights.txt", revision=model_repo["commit"]) is True
    assert api.file_exists(repo_id, "nope.json") is False
    assert api.file_exists(repo_id, "config.json", revision="no-such-branch") is False
    assert api.file_exists(f"{alice[0]}/no-such-repo-{uid()}", "config.json") is False


# --- listing ------------------------------------------------------------------------------------------------
def test_list_models_search_author_filter(api, anon_api, alice, model_repo):
    repo_id = model_repo["repo_id"]
    ids = [m.id for m in anon_api.list_models(author=alice[0])]
    assert repo_id in ids
    assert all(i.startswith(alice[0] + "/") for i in ids)
    found = list(anon_api.list_models(search=model_repo["name"]))
    assert [m.id for m in found] == [repo_id]
    assert HEX40.match(found[0].sha or "") or found[0].sha is None
    tagged = [m.id for m in anon_api.list_models(filter=model_repo["tag"])]
    assert tagged == [repo_id]
    assert list(anon_api.list_models(search=f"nothing-matches-{uid()}")) == []


def test_list_pagination_150_models_and_datasets(hf, server, make_user):
    name, token = make_user("pager")
    api = hf.HfApi(endpoint=server.url, token=token)
    models = {f"{name}/m-{i:03d}" for i in range(150)}
    datasets = {f"{name}/d-{i:03d}" for i in range(150)}
    for r in sorted(models):
        api.create_repo(r)
    for r in sorted(datasets):
        api.create_repo(r, repo_type="dataset")

    assert {m.id for m in api.list_models(author=name)} == models
    listed = [m.id for m in api.list_models(author=name)]
    assert len(listed) == 150  # no duplicates across pages
    assert len(list(api.list_models(author=name, limit=120))) == 120
    assert {m.id for m in api.list_models(author=name, search="m-14")} == {f"{name}/m-14{i}" for i in range(10)}
    assert {d.id for d in api.list_datasets(author=name)} == datasets
    assert len([d.id for d in api.list_datasets(author=name)]) == 150
    assert {d.id for d in api.list_datasets(author=name, search="d-00")} == {f"{name}/d-00{i}" for i in range(10)}

    created = [m.created_at for m in api.list_models(author=name, sort="created_at")]
    assert all(isinstance(c, dt.datetime) for c in created)
    assert created == sorted(created, reverse=True)

    # Raw check of §1.5: every Link is absolute and carries the filter; pages cover everything once.
    url, seen, pages = f"/api/models?author={name}&limit=50", [], 0
    while url:
        status, headers, body = raw(server, "GET", url, token=token)
        assert status == 200, body
        page = json.loads(body)
        assert len(page) <= 50
        seen += [m["id"] for m in page]
        pages += 1
        link = headers.get("link")
        url = None
        if link:
            m = re.search(r'<([^>]+)>;\s*rel="next"', link)
            if m:
                url = m.group(1)
                assert url.startswith(server.url + "/"), url
                assert f"author={name}" in url
        assert pages < 20
    assert pages >= 3  # limit=50 over 150 repos: the server must hand out a next link
    assert sorted(seen) == sorted(models)


def test_many_files_tree_pagination_and_snapshot(hf, api, server, alice, tmp_path):
    """1,100 small files: more than one page of /tree (HF pages at 1,000), all downloaded intact."""
    repo_id = f"{alice[0]}/many-{uid()}"
    api.create_repo(repo_id)
    files = {f"shard{i % 7}/file-{i:04d}.txt": f"content of file {i}\n".encode() * (1 + i % 5) for i in range(1100)}
    write_tree(tmp_path / "src", files)
    commit = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "src").oid
    listed = api.list_repo_files(repo_id)
    assert len(listed) == len(set(listed))
    assert set(listed) - {".gitattributes"} == set(files)
    shard = {e.path for e in api.list_repo_tree(repo_id, path_in_repo="shard3")}
    assert shard == {p for p in files if p.startswith("shard3/")}
    snap = hf.snapshot_download(repo_id, cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    assert Path(snap).name == commit
    got = read_tree(Path(snap))
    got.pop(".gitattributes", None)
    assert got == files
    sub = hf.snapshot_download(repo_id, allow_patterns=["shard1/*"], local_dir=tmp_path / "ld",
                               token=alice[1], endpoint=server.url)
    got = read_tree(Path(sub))
    assert got == {p: d for p, d in files.items() if p.startswith("shard1/")}


def test_list_repo_files_and_tree(hf, api, model_repo):
    repo_id, files, commit = model_repo["repo_id"], model_repo["files"], model_repo["commit"]
    listed = api.list_repo_files(repo_id)
    assert set(listed) - {".gitattributes"} == set(files)

    root = {e.path: e for e in api.list_repo_tree(repo_id)}
    assert isinstance(root["nested"], hf.hf_api.RepoFolder)
    assert isinstance(root["big"], hf.hf_api.RepoFolder)
    assert isinstance(root["data dir"], hf.hf_api.RepoFolder)
    assert isinstance(root["config.json"], hf.hf_api.RepoFile)
    assert "nested/a.txt" not in root
    assert root["config.json"].size == len(files["config.json"])
    assert root["config.json"].blob_id == git_blob_sha1(files["config.json"])

    sub = {e.path: e for e in api.list_repo_tree(repo_id, path_in_repo="nested")}
    assert set(sub) == {"nested/a.txt", "nested/deeper"}
    assert isinstance(sub["nested/deeper"], hf.hf_api.RepoFolder)

    rec = {e.path: e for e in api.list_repo_tree(repo_id, path_in_repo="nested", recursive=True)}
    rec_files = {p for p, e in rec.items() if isinstance(e, hf.hf_api.RepoFile)}
    assert rec_files == {"nested/a.txt", "nested/deeper/weights.txt", "nested/deeper/tiny.bin"}

    deep = {e.path for e in api.list_repo_tree(repo_id, path_in_repo="nested/deeper", revision=commit)}
    assert deep == {"nested/deeper/weights.txt", "nested/deeper/tiny.bin"}

    full = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True)}
    big = full["big/model.bin"]
    assert big.size == BIG_SIZE
    assert big.lfs is not None and big.lfs.sha256 == sha256(files["big/model.bin"]) and big.lfs.size == BIG_SIZE
    assert UNICODE_NAME in full

    expanded = {e.path: e for e in api.list_repo_tree(repo_id, expand=True)}
    lc = expanded["config.json"].last_commit
    assert lc is not None and lc.oid == commit and isinstance(lc.date, dt.datetime)

    with pytest.raises(hf.errors.EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="no-such-dir"))


def test_get_paths_info(hf, server, alice, model_repo):
    api = hf.HfApi(endpoint=server.url, token=alice[1])
    repo_id, files = model_repo["repo_id"], model_repo["files"]
    infos = api.get_paths_info(repo_id, ["config.json", "nested", "big/model.bin", "missing.txt", UNICODE_NAME],
                               revision=model_repo["commit"])
    by = {e.path: e for e in infos}
    assert set(by) == {"config.json", "nested", "big/model.bin", UNICODE_NAME}
    assert isinstance(by["nested"], hf.hf_api.RepoFolder)
    assert by["config.json"].size == len(files["config.json"])
    assert by["config.json"].blob_id == git_blob_sha1(files["config.json"])
    assert by["big/model.bin"].lfs.sha256 == sha256(files["big/model.bin"])
    assert by[UNICODE_NAME].size == len(files[UNICODE_NAME])


def test_hffilesystem_ranged_read(hf, server, alice, model_repo):
    fs = hf.HfFileSystem(endpoint=server.url, token=alice[1], skip_instance_cache=True)
    repo_id, big = model_repo["repo_id"], model_repo["files"]["big/model.bin"]
    path = f"{repo_id}/big/model.bin"
    assert fs.info(path)["size"] == BIG_SIZE
    with fs.open(path, "rb") as f:
        f.seek(12_345_678)
        assert f.read(100_000) == big[12_345_678:12_445_678]
        f.seek(BIG_SIZE - 10)
        assert f.read() == big[-10:]
    assert fs.cat_file(path, start=1000, end=5000) == big[1000:5000]
    assert fs.cat_file(f"{repo_id}@{model_repo['commit']}/config.json") == model_repo["files"]["config.json"]
    names = {p.rsplit("/", 1)[1] for p in fs.ls(repo_id, detail=False)}
    assert {"config.json", "README.md", "nested", "big"} <= names


def test_resolve_range_and_headers_raw(server, model_repo):
    """The HTTP-level contract the client relies on (§2.1, §2.5): Range → 206, HEAD sizes, headers."""
    repo_id, big, commit = model_repo["repo_id"], model_repo["files"]["big/model.bin"], model_repo["commit"]
    status, headers, body = raw(server, "GET", f"/{repo_id}/resolve/main/big/model.bin",
                                headers={"Range": "bytes=100-199"})
    assert status == 206
    assert body == big[100:200]
    assert headers.get("content-range") == f"bytes 100-199/{BIG_SIZE}"
    status, headers, body = raw(server, "HEAD", f"/{repo_id}/resolve/main/big/model.bin",
                                headers={"Accept-Encoding": "identity"})
    assert status == 200 and body == b""
    assert headers.get("content-length") == str(BIG_SIZE)
    assert headers.get("x-repo-commit") == commit
    assert not any(k.lower().startswith("x-xet") for k in headers)
    quoted = urllib.parse.quote(UNICODE_NAME)
    status, headers, body = raw(server, "GET", f"/{repo_id}/resolve/{commit}/{quoted}")
    assert status == 200 and body == model_repo["files"][UNICODE_NAME]


# --- commits, refs, branches, tags ---------------------------------------------------------------------------
@pytest.fixture
def small_repo(api, alice, tmp_path):
    repo_id = f"{alice[0]}/small-{uid()}"
    api.create_repo(repo_id)
    v1 = {"config.json": b'{"v": 1}', "nested/x.txt": b"x1", "nested/y.txt": b"y1", "keep.txt": b"keep"}
    write_tree(tmp_path / "v1", v1)
    c1 = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v1", commit_message="version one").oid
    return repo_id, v1, c1


def test_list_repo_commits_and_refs(hf, api, small_repo):
    repo_id, _, c1 = small_repo
    c2 = api.upload_file(path_or_fileobj=b'{"v": 2}', path_in_repo="config.json", repo_id=repo_id,
                         commit_message="version two", commit_description="longer text").oid
    commits = api.list_repo_commits(repo_id)
    assert [c.commit_id for c in commits[:2]] == [c2, c1]
    assert len(commits) >= 2
    assert commits[0].title == "version two"
    assert commits[1].title == "version one"
    assert all(HEX40.match(c.commit_id) for c in commits)
    assert all(isinstance(c.created_at, dt.datetime) for c in commits)
    assert commits[0].created_at >= commits[1].created_at
    at_c1 = api.list_repo_commits(repo_id, revision=c1)
    assert at_c1[0].commit_id == c1 and c2 not in {c.commit_id for c in at_c1}

    refs = api.list_repo_refs(repo_id)
    branches = {b.name: b for b in refs.branches}
    assert branches["main"].target_commit == c2
    assert branches["main"].ref == "refs/heads/main"
    assert refs.tags == []
    with pytest.raises(hf.errors.RevisionNotFoundError):
        api.list_repo_commits(repo_id, revision="no-such-branch")


def test_branches(hf, api, server, alice, small_repo, tmp_path):
    repo_id, v1, c1 = small_repo
    api.create_branch(repo_id, branch="dev", revision=c1)
    api.create_branch(repo_id, branch="feature/x")  # from main; slash is sent as %2F
    with pytest.raises(hf.errors.HTTPError) as e:
        api.create_branch(repo_id, branch="dev")
    assert http_status(e.value) == 409
    api.create_branch(repo_id, branch="dev", exist_ok=True)
    refs = {b.name: b.target_commit for b in api.list_repo_refs(repo_id).branches}
    assert refs["dev"] == c1 and refs["feature/x"] == c1 and refs["main"] == c1

    c_dev = api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=repo_id,
                            revision="dev").oid
    c_feat = api.upload_file(path_or_fileobj=b"feature", path_in_repo="feat.txt", repo_id=repo_id,
                             revision="feature/x").oid
    assert api.model_info(repo_id).sha == c1  # main untouched
    assert api.model_info(repo_id, revision="dev").sha == c_dev
    assert api.model_info(repo_id, revision="feature/x").sha == c_feat
    kw = dict(cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    assert Path(hf.hf_hub_download(repo_id, "dev.txt", revision="dev", **kw)).read_bytes() == b"dev only"
    assert Path(hf.hf_hub_download(repo_id, "feat.txt", revision="feature/x", **kw)).read_bytes() == b"feature"
    assert api.file_exists(repo_id, "dev.txt") is False
    assert "dev.txt" in api.list_repo_files(repo_id, revision="dev")

    api.delete_branch(repo_id, branch="dev")
    api.delete_branch(repo_id, branch="feature/x")
    names = {b.name for b in api.list_repo_refs(repo_id).branches}
    assert names == {"main"}
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.hf_hub_download(repo_id, "dev.txt", revision="dev", cache_dir=tmp_path / "c2", token=alice[1],
                           endpoint=server.url)
    with pytest.raises(hf.errors.RevisionNotFoundError):
        api.model_info(repo_id, revision="dev")


def test_tags_and_download_at_tag(hf, api, server, alice, small_repo, tmp_path):
    repo_id, v1, c1 = small_repo
    api.create_tag(repo_id, tag="v1.0", revision=c1, tag_message="first release")
    with pytest.raises(hf.errors.HTTPError) as e:
        api.create_tag(repo_id, tag="v1.0")
    assert http_status(e.value) == 409
    c2 = api.upload_file(path_or_fileobj=b'{"v": 2}', path_in_repo="config.json", repo_id=repo_id).oid
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}
    assert tags == {"v1.0": c1}

    kw = dict(cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    assert Path(hf.hf_hub_download(repo_id, "config.json", revision="v1.0", **kw)).read_bytes() == b'{"v": 1}'
    assert Path(hf.hf_hub_download(repo_id, "config.json", **kw)).read_bytes() == b'{"v": 2}'
    assert Path(hf.hf_hub_download(repo_id, "config.json", revision=c1, **kw)).read_bytes() == b'{"v": 1}'
    snap = hf.snapshot_download(repo_id, revision="v1.0", **kw)
    assert Path(snap).name == c1
    got = read_tree(Path(snap))
    got.pop(".gitattributes", None)
    assert got == v1
    assert api.model_info(repo_id, revision="v1.0").sha == c1
    assert api.model_info(repo_id).sha == c2

    api.delete_tag(repo_id, tag="v1.0")
    assert api.list_repo_refs(repo_id).tags == []
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.hf_hub_download(repo_id, "config.json", revision="v1.0", cache_dir=tmp_path / "c2",
                           token=alice[1], endpoint=server.url)


def test_delete_file_and_folder(hf, api, server, alice, small_repo, tmp_path):
    repo_id, v1, c1 = small_repo
    c2 = api.create_commit(repo_id, operations=[
        hf.CommitOperationDelete(path_in_repo="nested/"),
        hf.CommitOperationDelete(path_in_repo="config.json"),
    ], commit_message="delete things").oid
    assert c2 != c1
    assert set(api.list_repo_files(repo_id)) - {".gitattributes"} == {"keep.txt"}
    kw = dict(cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    with pytest.raises(hf.errors.EntryNotFoundError) as e:
        hf.hf_hub_download(repo_id, "config.json", **kw)
    assert_remote_entry_not_found(hf, e)
    # the old commit is immutable
    assert Path(hf.hf_hub_download(repo_id, "nested/x.txt", revision=c1, **kw)).read_bytes() == b"x1"

    api.upload_file(path_or_fileobj=b"z", path_in_repo="dir/z.txt", repo_id=repo_id)
    api.delete_folder("dir", repo_id=repo_id)
    api.delete_file("keep.txt", repo_id=repo_id)
    assert set(api.list_repo_files(repo_id)) - {".gitattributes"} == set()
    with pytest.raises(hf.errors.EntryNotFoundError) as e:
        api.delete_file("keep.txt", repo_id=repo_id)
    assert not isinstance(e.value, hf.errors.LocalEntryNotFoundError)


# --- repo management ----------------------------------------------------------------------------------------
def test_move_repo(hf, api, server, alice, small_repo, tmp_path):
    repo_id, v1, c1 = small_repo
    new_id = f"{alice[0]}/moved-{uid()}"
    api.move_repo(from_id=repo_id, to_id=new_id)
    assert api.repo_exists(repo_id) is False
    assert api.model_info(new_id).sha == c1
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.model_info(repo_id)
    p = hf.hf_hub_download(new_id, "keep.txt", cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    assert Path(p).read_bytes() == b"keep"


def test_delete_repo(hf, api, small_repo):
    repo_id, v1, c1 = small_repo
    api.delete_repo(repo_id)
    assert api.repo_exists(repo_id) is False
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.model_info(repo_id)
    api.delete_repo(repo_id, missing_ok=True)
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.delete_repo(repo_id)
    api.create_repo(repo_id)  # the name is free again, and the new repo is empty
    assert set(api.list_repo_files(repo_id)) - {".gitattributes"} == set()


def test_visibility_settings(hf, api, anon_api, hf_major, small_repo):
    repo_id, _, c1 = small_repo
    assert anon_api.model_info(repo_id).sha == c1
    api.update_repo_settings(repo_id, private=True)
    assert api.model_info(repo_id).private is True
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        anon_api.model_info(repo_id)
    make_private(api, hf_major, repo_id, False)
    assert api.model_info(repo_id).private is False
    assert anon_api.model_info(repo_id).sha == c1
    make_private(api, hf_major, repo_id, True)
    assert anon_api.repo_exists(repo_id) is False


def test_private_repo_invisible(hf, api, bob_api, anon_api, server, alice, bob, tmp_path):
    repo_id = f"{alice[0]}/secret-{uid()}"
    api.create_repo(repo_id, private=True)
    c = api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id).oid
    assert api.model_info(repo_id).sha == c
    p = hf.hf_hub_download(repo_id, "s.txt", cache_dir=tmp_path / "a", token=alice[1], endpoint=server.url)
    assert Path(p).read_bytes() == b"secret"
    for other in (bob_api, anon_api):
        with pytest.raises(hf.errors.RepositoryNotFoundError):
            other.model_info(repo_id)
        assert other.repo_exists(repo_id) is False
        assert other.file_exists(repo_id, "s.txt") is False
        with pytest.raises(hf.errors.RepositoryNotFoundError):
            list(other.list_repo_tree(repo_id))
    for token in (bob[1], False):
        with pytest.raises(hf.errors.RepositoryNotFoundError):
            hf.hf_hub_download(repo_id, "s.txt", cache_dir=tmp_path / "b", token=token, endpoint=server.url)
        with pytest.raises(hf.errors.RepositoryNotFoundError):
            hf.snapshot_download(repo_id, cache_dir=tmp_path / "b", token=token, endpoint=server.url)
    assert repo_id not in {m.id for m in anon_api.list_models(author=alice[0])}
    assert repo_id not in {m.id for m in bob_api.list_models(author=alice[0])}
    mine = {m.id: m for m in api.list_models(author=alice[0])}
    assert repo_id in mine and mine[repo_id].private is True
    # bob cannot write to it either
    with pytest.raises(hf.errors.HTTPError):
        bob_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert api.model_info(repo_id).sha == c


# --- auth --------------------------------------------------------------------------------------------------------
def test_whoami(hf, api, server, alice):
    me = api.whoami()
    assert me["name"] == alice[0]
    assert me["type"] == "user"
    with pytest.raises(hf.errors.HTTPError) as e:
        hf.HfApi(endpoint=server.url, token="my_notAValidToken0000000000000000").whoami()
    assert http_status(e.value) == 401


def test_bad_token_and_anonymous_writes_refused(hf, api, anon_api, server, alice, model_repo):
    bad = hf.HfApi(endpoint=server.url, token="my_notAValidToken0000000000000000")
    with pytest.raises(hf.errors.HTTPError) as e:
        bad.create_repo(f"{alice[0]}/bad-{uid()}")
    assert http_status(e.value) == 401
    repo_id = model_repo["repo_id"]
    before = api.model_info(repo_id).sha
    with pytest.raises(hf.errors.HTTPError) as e:
        bad.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert http_status(e.value) == 401
    with pytest.raises(hf.errors.HTTPError) as e:
        anon_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert http_status(e.value) in (401, 403)
    with pytest.raises(hf.errors.HTTPError) as e:
        anon_api.create_repo(f"{alice[0]}/anon-{uid()}")
    assert http_status(e.value) in (401, 403)
    with pytest.raises(hf.errors.HTTPError) as e:
        anon_api.delete_repo(repo_id)
    assert http_status(e.value) in (401, 403)
    assert api.model_info(repo_id).sha == before


# --- errors -------------------------------------------------------------------------------------------------------
def test_missing_repo_revision_file_errors(hf, api, server, alice, model_repo, tmp_path):
    repo_id, commit = model_repo["repo_id"], model_repo["commit"]
    kw = dict(cache_dir=tmp_path / "c", token=alice[1], endpoint=server.url)
    missing = f"{alice[0]}/no-such-repo-{uid()}"
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.model_info(missing)
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        hf.hf_hub_download(missing, "config.json", **kw)
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.dataset_info(repo_id)  # a model is not a dataset

    with pytest.raises(hf.errors.RevisionNotFoundError):
        api.model_info(repo_id, revision="no-such-branch")
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.hf_hub_download(repo_id, "config.json", revision="no-such-branch", **kw)
    with pytest.raises(hf.errors.RevisionNotFoundError):
        hf.hf_hub_download(repo_id, "config.json", revision="0" * 40, **kw)
    with pytest.raises(hf.errors.RevisionNotFoundError):
        list(api.list_repo_tree(repo_id, revision="no-such-branch"))

    with pytest.raises(hf.errors.EntryNotFoundError) as e:
        hf.hf_hub_download(repo_id, "no-such-file.json", **kw)
    assert_remote_entry_not_found(hf, e)
    # §2.3: the 404 carries X-Repo-Commit, so the client records a .no_exist marker for that commit.
    cache_repo = tmp_path / "c" / f"models--{repo_id.replace('/', '--')}"
    assert (cache_repo / ".no_exist" / commit / "no-such-file.json").exists()
    assert hf.try_to_load_from_cache(repo_id, "no-such-file.json", cache_dir=tmp_path / "c") is hf._CACHED_NO_EXIST


# --- datasets -------------------------------------------------------------------------------------------------------
def test_dataset_repo_roundtrip(hf, api, anon_api, server, alice, tmp_path):
    name = f"ds-{uid()}"
    repo_id = f"{alice[0]}/{name}"
    files = {
        "README.md": b"---\nlicense: cc-by-4.0\ntags:\n- tabular\n---\n\n# A dataset\n",
        "data/train.csv": b"id,text,label\n" + b"".join(b"%d,row %d,%d\n" % (i, i, i % 2) for i in range(500)),
        "data/test.csv": b"id,text,label\n1,a,0\n2,b,1\n",
        "data/blob.bin": os.urandom(2 * 1024 * 1024),
    }
    write_tree(tmp_path / "src", files)
    url = api.create_repo(repo_id, repo_type="dataset")
    assert str(url) == f"{server.url}/datasets/{repo_id}"
    c1 = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "src", repo_type="dataset").oid
    assert HEX40.match(c1)
    c2 = api.upload_file(path_or_fileobj=b"extra", path_in_repo="extra.txt", repo_id=repo_id,
                         repo_type="dataset").oid
    files["extra.txt"] = b"extra"

    kw = dict(repo_type="dataset", token=alice[1], endpoint=server.url)
    snap = hf.snapshot_download(repo_id, cache_dir=tmp_path / "c", **kw)
    assert Path(snap).name == c2
    got = read_tree(Path(snap))
    got.pop(".gitattributes", None)
    assert got == files
    p = hf.hf_hub_download(repo_id, "data/train.csv", revision=c1, cache_dir=tmp_path / "c2", **kw)
    assert Path(p).read_bytes() == files["data/train.csv"]
    assert "datasets--" in Path(p).as_posix()
    with pytest.raises(hf.errors.EntryNotFoundError) as e:
        hf.hf_hub_download(repo_id, "extra.txt", revision=c1, cache_dir=tmp_path / "c2", **kw)
    assert_remote_entry_not_found(hf, e)

    info = api.dataset_info(repo_id)
    assert isinstance(info, hf.DatasetInfo)
    assert info.id == repo_id and info.sha == c2
    assert set(files) <= {s.rfilename for s in info.siblings}
    assert info.card_data.get("license") == "cc-by-4.0"
    assert api.repo_info(repo_id, repo_type="dataset").sha == c2
    assert api.repo_exists(repo_id, repo_type="dataset") and not api.repo_exists(repo_id)
    assert api.file_exists(repo_id, "data/test.csv", repo_type="dataset")
    assert not api.file_exists(repo_id, "data/nope.csv", repo_type="dataset")
    with pytest.raises(hf.errors.RepositoryNotFoundError):
        api.model_info(repo_id)

    assert set(api.list_repo_files(repo_id, repo_type="dataset")) - {".gitattributes"} == set(files)
    sub = {e.path for e in api.list_repo_tree(repo_id, path_in_repo="data", repo_type="dataset")}
    assert sub == {"data/train.csv", "data/test.csv", "data/blob.bin"}
    assert [d.id for d in anon_api.list_datasets(search=name)] == [repo_id]
    assert repo_id in {d.id for d in anon_api.list_datasets(author=alice[0])}
    assert repo_id not in {m.id for m in anon_api.list_models(author=alice[0])}

    api.create_tag(repo_id, tag="first", revision=c1, repo_type="dataset")
    assert {t.name: t.target_commit for t in api.list_repo_refs(repo_id, repo_type="dataset").tags} == {"first": c1}
    p = hf.hf_hub_download(repo_id, "data/test.csv", revision="first", cache_dir=tmp_path / "c3", **kw)
    assert Path(p).read_bytes() == files["data/test.csv"]
    commits = api.list_repo_commits(repo_id, repo_type="dataset")
    assert [c.commit_id for c in commits[:2]] == [c2, c1]

    fs = hf.HfFileSystem(endpoint=server.url, token=alice[1], skip_instance_cache=True)
    with fs.open(f"datasets/{repo_id}/data/blob.bin", "rb") as f:
        f.seek(1_000_000)
        assert f.read(4096) == files["data/blob.bin"][1_000_000:1_004_096]
    assert fs.cat_file(f"datasets/{repo_id}/data/test.csv") == files["data/test.csv"]

    api.delete_file("data/test.csv", repo_id=repo_id, repo_type="dataset")
    assert "data/test.csv" not in api.list_repo_files(repo_id, repo_type="dataset")
    api.delete_repo(repo_id, repo_type="dataset")
    assert not api.repo_exists(repo_id, repo_type="dataset")
