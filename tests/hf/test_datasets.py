"""`datasets.load_dataset("ns/name")` against a real modelyard server (issue 3).

Runs only where the `datasets` package is installed (scripts/hf-tests runs it in .venv-hf-datasets,
pinned by requirements-datasets.txt); skipped in the plain huggingface_hub venvs. `datasets` reads
HF_ENDPOINT and HF_DATASETS_CACHE when it is imported, so it is imported inside the `ds` fixture,
after the `server` fixture has set HF_ENDPOINT. Offline mode is never set: the data must come from
the server.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import os
import uuid
from pathlib import Path

import pytest

# Not pytest.importorskip("datasets"): importing datasets imports huggingface_hub, which must not
# happen before the server fixture has set HF_ENDPOINT. find_spec only looks for the package.
if importlib.util.find_spec("datasets") is None:
    pytest.skip("datasets is only installed in .venv-hf-datasets (requirements-datasets.txt)",
                allow_module_level=True)
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N_CSV = 300
N_PARQUET = 500


def uid() -> str:
    return uuid.uuid4().hex[:10]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- known data -------------------------------------------------------------------------------------
def csv_row(i: int) -> dict:
    # A string column with commas, quotes and non-ASCII text, a float, an int and a label.
    return {
        "id": i,
        "name": f"item {i}, \"q{i % 7}\" ü{i}",
        "score": i * 0.25 + 0.125,  # exactly representable: read back bit-for-bit
        "label": ["cat", "dog", "bird"][i % 3],
    }


def csv_bytes() -> bytes:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["id", "name", "score", "label"], lineterminator="\n")
    w.writeheader()
    for i in range(N_CSV):
        w.writerow(csv_row(i))
    return buf.getvalue().encode("utf-8")


def parquet_row(i: int) -> dict:
    return {
        "idx": i,
        "text": f"parquet row {i} — ñ {'x' * (i % 13)}",
        "value": i / 8.0 - 3.5,
        "flag": i % 2 == 0,
    }


def parquet_bytes(rows: range) -> bytes:
    table = pa.table({
        "idx": pa.array([parquet_row(i)["idx"] for i in rows], pa.int64()),
        "text": pa.array([parquet_row(i)["text"] for i in rows], pa.string()),
        "value": pa.array([parquet_row(i)["value"] for i in rows], pa.float64()),
        "flag": pa.array([parquet_row(i)["flag"] for i in rows], pa.bool_()),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


CSV_CARD = """---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.csv
---
# CSV test dataset

{n} rows: id, name, score, label.
"""

# No `configs:` here: datasets must infer the splits from the standard file layout
# (data/train-*.parquet, data/test-*.parquet), by listing the repo through HfFileSystem.
PARQUET_CARD = """---
license: apache-2.0
---
# Parquet test dataset

Splits inferred from data/train-*.parquet and data/test-*.parquet.
"""


# --- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ds(server, hf):
    """The datasets package, imported after HF_ENDPOINT points at the server."""
    assert os.environ.get("HF_ENDPOINT") == server.url
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        assert not os.environ.get(var), f"{var} must not be set"
    os.environ["HF_DATASETS_CACHE"] = str(Path(os.environ["HF_HOME"]) / "datasets-cache")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets

    assert datasets.config.HF_ENDPOINT == server.url, (datasets.config.HF_ENDPOINT, server.url)
    assert not datasets.config.HF_HUB_OFFLINE
    return datasets


@pytest.fixture(scope="session")
def csv_repo(api, alice):
    repo_id = f"{alice[0]}/csv-{uid()}"
    api.create_repo(repo_id, repo_type="dataset")
    data = csv_bytes()
    api.upload_file(path_or_fileobj=CSV_CARD.format(n=N_CSV).encode(), path_in_repo="README.md",
                    repo_id=repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=data, path_in_repo="data/train.csv", repo_id=repo_id,
                    repo_type="dataset")
    return repo_id, data


@pytest.fixture(scope="session")
def parquet_repo(api, alice, tmp_path_factory):
    repo_id = f"{alice[0]}/parquet-{uid()}"
    api.create_repo(repo_id, repo_type="dataset")
    folder = tmp_path_factory.mktemp("parquet-repo")
    (folder / "data").mkdir()
    (folder / "README.md").write_text(PARQUET_CARD)
    train = parquet_bytes(range(0, N_PARQUET))
    test = parquet_bytes(range(N_PARQUET, N_PARQUET + 40))
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(train)
    (folder / "data" / "test-00000-of-00001.parquet").write_bytes(test)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset")
    return repo_id, train, test


def fresh_cache(tmp_path: Path) -> str:
    d = tmp_path / "datasets-cache"
    d.mkdir(parents=True)
    return str(d)


# --- tests ------------------------------------------------------------------------------------------
def test_load_dataset_csv(ds, csv_repo, tmp_path):
    repo_id, data = csv_repo
    dd = ds.load_dataset(repo_id, cache_dir=fresh_cache(tmp_path))
    assert list(dd.keys()) == ["train"]
    train = dd["train"]
    assert train.num_rows == N_CSV
    assert train.column_names == ["id", "name", "score", "label"]
    assert train.features["id"].dtype == "int64"
    assert train.features["score"].dtype == "float64"
    assert train.features["name"].dtype in ("string", "large_string")  # 5.x: large_string from CSV
    for i in (0, 1, 2, 7, 150, N_CSV - 1):
        assert train[i] == csv_row(i), i
    assert train["id"] == list(range(N_CSV))
    assert sum(train["score"]) == sum(csv_row(i)["score"] for i in range(N_CSV))
    assert train["label"].count("dog") == len([i for i in range(N_CSV) if i % 3 == 1])


def test_load_dataset_csv_downloaded_bytes_identical(ds, hf, server, csv_repo, tmp_path):
    """The CSV file that datasets fetched into its cache is the uploaded file, byte for byte."""
    repo_id, data = csv_repo
    cache = fresh_cache(tmp_path)
    ds.load_dataset(repo_id, cache_dir=cache)
    # datasets 5.x downloads hub files through huggingface_hub into <cache_dir>/... or HF_HUB_CACHE;
    # look for a file with the uploaded content anywhere under the caches used.
    roots = [Path(cache), Path(os.environ["HF_HOME"])]
    want = sha256(data)
    found = [p for r in roots for p in r.rglob("*train.csv*") if p.is_file() and sha256(p.read_bytes()) == want]
    assert found, f"no cached copy of data/train.csv with sha256 {want} under {roots}"


def test_load_dataset_parquet(ds, parquet_repo, tmp_path):
    repo_id, train_bytes, test_bytes = parquet_repo
    dd = ds.load_dataset(repo_id, cache_dir=fresh_cache(tmp_path))
    assert sorted(dd.keys()) == ["test", "train"]
    train, test = dd["train"], dd["test"]
    assert train.num_rows == N_PARQUET
    assert test.num_rows == 40
    assert train.column_names == ["idx", "text", "value", "flag"]
    assert train.features["value"].dtype == "float64"
    assert train.features["text"].dtype == "string"
    assert train.features["flag"].dtype == "bool"
    for i in (0, 1, 13, 250, N_PARQUET - 1):
        assert train[i] == parquet_row(i), i
    assert test[0] == parquet_row(N_PARQUET)
    assert test[39] == parquet_row(N_PARQUET + 39)
    assert train["idx"] == list(range(N_PARQUET))


def test_load_dataset_parquet_single_split(ds, parquet_repo, tmp_path):
    repo_id, _, _ = parquet_repo
    test = ds.load_dataset(repo_id, split="test", cache_dir=fresh_cache(tmp_path))
    assert test.num_rows == 40
    assert test["idx"] == list(range(N_PARQUET, N_PARQUET + 40))


def test_load_dataset_parquet_at_revision(ds, api, parquet_repo, tmp_path):
    """revision= pins the load to a commit: files added later are not seen."""
    repo_id, _, _ = parquet_repo
    head = api.dataset_info(repo_id).sha
    dd = ds.load_dataset(repo_id, revision=head, cache_dir=fresh_cache(tmp_path))
    assert dd["train"].num_rows == N_PARQUET


def test_load_dataset_streaming_parquet(ds, parquet_repo):
    """streaming=True reads the Parquet file over HTTP through HfFileSystem (Range requests)."""
    repo_id, _, _ = parquet_repo
    it = ds.load_dataset(repo_id, split="train", streaming=True)
    rows = list(it.take(5))
    assert rows == [parquet_row(i) for i in range(5)]


def test_load_dataset_private_needs_token(ds, hf, api, alice, server, tmp_path):
    repo_id = f"{alice[0]}/private-csv-{uid()}"
    api.create_repo(repo_id, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=CSV_CARD.format(n=N_CSV).encode(), path_in_repo="README.md",
                    repo_id=repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=csv_bytes(), path_in_repo="data/train.csv", repo_id=repo_id,
                    repo_type="dataset")
    # Without a token the private repo looks missing (404 + X-Error-Code: RepositoryNotFound).
    with pytest.raises(ds.exceptions.DatasetNotFoundError):
        ds.load_dataset(repo_id, cache_dir=fresh_cache(tmp_path / "anon"), token=False)
    dd = ds.load_dataset(repo_id, cache_dir=fresh_cache(tmp_path / "auth"), token=alice[1])
    assert dd["train"].num_rows == N_CSV
