"""The Glue crawler runner of the local cloud: `StartCrawler` really crawls.

moto stores crawlers and flips their state, but never reads S3. While a
`GlueCrawlerRunner` is started, moto's `GlueBackend.start_crawler` (which every
caller reaches: boto3, the AWS CLI, the pipeline, all over the emulator's HTTP
API) keeps its own checks and state, then crawls in a background thread:

- lists each `Targets.S3Targets` path, leaving out `Exclusions` globs (relative
  to the path; `*` within a folder, `**` across folders);
- one table per dataset folder directly under the path (`TablePrefix` + name),
  Hive-style `key=value/` folders as string partition keys, one catalog
  partition per folder;
- schema from Parquet footers (pyarrow, ranged reads) and JSON / JSON Lines
  samples (first 1 MB), merged across files, new columns appended;
- `SchemaChangePolicy.UpdateBehavior`: `UPDATE_IN_DATABASE` (default) updates
  the table's columns, `LOG` leaves them (new partitions are still added);
  deletions are never made (`DeleteBehavior` is treated as `LOG`);
- then the crawler is READY and `LastCrawl` says SUCCEEDED, or FAILED with the
  error message when a file cannot be read.

`GetCrawlerMetrics` is not served (moto has no route for it).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_cloud import defaults, moto_internals, moto_patches
from local_cloud.glue_schema import (
    Columns,
    json_columns,
    merge_columns,
    parquet_columns,
    sample_lines,
)

log = logging.getLogger(__name__)

JSON_SAMPLE_BYTES = 1024 * 1024
_PARQUET = "parquet"
_JSON = "json"

#: Storage descriptors as Glue's crawlers write them, per classification.
STORAGE_FORMATS: dict[str, dict[str, Any]] = {
    _PARQUET: {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        },
    },
    _JSON: {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
            "Parameters": {},
        },
    },
}


class CrawlError(Exception):
    """A crawl could not finish; the message becomes `LastCrawl.ErrorMessage`."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A Glue exclude glob as a regex: `**` spans folders, `*` and `?` stay inside one."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "{":
            end = pattern.find("}", i)
            if end == -1:
                out.append(re.escape("{"))
                i += 1
                continue
            options = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(re.escape(o) for o in options) + ")")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def classify(key: str) -> tuple[str, bool] | None:
    """(classification, gzipped) of an object by its name; None for files crawlers skip."""
    name = key.rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    stem = name.removesuffix(".gz")
    if stem.endswith(".parquet") or stem.endswith(".snappy.parquet"):
        return _PARQUET, False
    if stem.endswith((".json", ".jsonl", ".ndjson")):
        return _JSON, gzipped
    return None


class S3RangeFile(io.RawIOBase):
    """A seekable read-only view of an S3 object that fetches only the bytes read."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int) -> None:
        self._s3, self._bucket, self._key, self._size = s3, bucket, key, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        byte_range = f"bytes={self._pos}-{self._pos + n - 1}"
        body = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=byte_range)
        data = body["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass
class Dataset:
    """One table's worth of files found under a crawler target."""

    name: str
    location: str
    classification: str | None = None
    compressed: bool = False
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> location
    columns: Columns = field(default_factory=dict)
    object_count: int = 0
    size: int = 0


def _table_name(prefix: str, folder: str) -> str:
    # Glue lowercases names and keeps only letters, digits and underscores.
    return re.sub(r"[^a-z0-9_]", "_", f"{prefix}{folder}".lower())


class Crawl:
    """One crawl of one crawler's S3 targets into its database."""

    def __init__(self, s3: Any, glue: Any, crawler: dict[str, Any]) -> None:
        self._s3, self._glue, self.crawler = s3, glue, crawler
        self.tables_created = 0
        self.tables_updated = 0

    def run(self) -> None:
        """Crawl every S3 target and write the catalog."""
        datasets: dict[str, Dataset] = {}
        for target in (self.crawler.get("Targets") or {}).get("S3Targets") or []:
            for dataset in self._scan(target):
                if dataset.name in datasets:
                    raise CrawlError(f"two targets produce table {dataset.name}")
                datasets[dataset.name] = dataset
        self._ensure_database()
        for dataset in datasets.values():
            self._write(dataset)

    def _scan(self, target: dict[str, Any]) -> list[Dataset]:
        path = target["Path"]
        match = re.match(r"s3://([^/]+)/?(.*)", path)
        if not match:
            raise CrawlError(f"not an S3 path: {path}")
        bucket, prefix = match[1], match[2]
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        excludes = [glob_regex(p) for p in target.get("Exclusions") or []]
        datasets: dict[str, Dataset] = {}
        table_prefix = self.crawler.get("TablePrefix") or ""
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                key, relative = obj["Key"], obj["Key"][len(prefix) :]
                if not relative or key.endswith("/") or obj["Size"] == 0:
                    continue
                if any(rx.match(relative) for rx in excludes):
                    continue
                kind = classify(key)
                if kind is None:
                    log.info("crawler %s: skipped unclassified %s", self.crawler["Name"], key)
                    continue
                folders = relative.split("/")[:-1]
                if folders:
                    folder, partition_dirs = folders[0], folders[1:]
                    location = f"s3://{bucket}/{prefix}{folder}/"
                else:  # files straight under the target path: the table is the path
                    folder = prefix.rstrip("/").rsplit("/", 1)[-1] or bucket
                    partition_dirs, location = [], f"s3://{bucket}/{prefix}"
                name = _table_name(table_prefix, folder)
                dataset = datasets.setdefault(name, Dataset(name, location))
                self._add_file(dataset, bucket, key, obj["Size"], kind, partition_dirs)
        return list(datasets.values())

    def _add_file(
        self,
        dataset: Dataset,
        bucket: str,
        key: str,
        size: int,
        kind: tuple[str, bool],
        partition_dirs: list[str],
    ) -> None:
        classification, gzipped = kind
        if dataset.classification not in (None, classification):
            raise CrawlError(
                f"table {dataset.name} mixes {dataset.classification} and {classification} files"
            )
        dataset.classification = classification
        dataset.compressed = dataset.compressed or gzipped
        names, values = [], []
        for i, part in enumerate(partition_dirs):
            k, sep, v = part.partition("=")
            names.append(k if sep else f"partition_{i}")
            values.append(v if sep else part)
        if not dataset.partition_keys:
            dataset.partition_keys = names
        elif dataset.partition_keys != names and (names or dataset.partitions):
            raise CrawlError(f"table {dataset.name} has inconsistent partition folders: {key}")
        if values:
            dataset.partitions[tuple(values)] = dataset.location + "".join(
                f"{d}/" for d in partition_dirs
            )
        try:
            columns = self._file_columns(bucket, key, size, classification, gzipped)
        except Exception as exc:
            raise CrawlError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        dataset.columns = merge_columns(dataset.columns, columns)
        dataset.object_count += 1
        dataset.size += size

    def _file_columns(
        self, bucket: str, key: str, size: int, classification: str, gzipped: bool
    ) -> Columns:
        if classification == _PARQUET:
            return parquet_columns(io.BufferedReader(S3RangeFile(self._s3, bucket, key, size)))
        if gzipped:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            with gzip.GzipFile(fileobj=body) as unzipped:
                data = unzipped.read(JSON_SAMPLE_BYTES + 1)
        else:
            byte_range = f"bytes=0-{JSON_SAMPLE_BYTES}"
            data = self._s3.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"].read()
        truncated = len(data) > JSON_SAMPLE_BYTES
        return json_columns(sample_lines(data[:JSON_SAMPLE_BYTES], truncated))

    def _ensure_database(self) -> None:
        name = self.crawler["DatabaseName"]
        try:
            self._glue.get_database(Name=name)
        except self._glue.exceptions.EntityNotFoundException:
            self._glue.create_database(DatabaseInput={"Name": name})

    def _storage(self, dataset: Dataset, columns: Columns, location: str) -> dict[str, Any]:
        fmt = STORAGE_FORMATS[dataset.classification or _JSON]
        serde = {**fmt["SerdeInfo"], "Parameters": dict(fmt["SerdeInfo"]["Parameters"])}
        if dataset.classification == _JSON:
            serde["Parameters"]["paths"] = ",".join(columns)
        return {
            "Columns": [{"Name": n, "Type": t} for n, t in columns.items()],
            "Location": location,
            "InputFormat": fmt["InputFormat"],
            "OutputFormat": fmt["OutputFormat"],
            "Compressed": dataset.compressed,
            "NumberOfBuckets": -1,
            "SerdeInfo": serde,
            "BucketColumns": [],
            "SortColumns": [],
            "Parameters": self._parameters(dataset),
            "StoredAsSubDirectories": False,
        }

    def _parameters(self, dataset: Dataset) -> dict[str, str]:
        return {
            "classification": dataset.classification or _JSON,
            "compressionType": "gzip" if dataset.compressed else "none",
            "typeOfData": "file",
            "objectCount": str(dataset.object_count),
            "sizeKey": str(dataset.size),
            "UPDATED_BY_CRAWLER": self.crawler["Name"],
            "CrawlerSchemaSerializerVersion": "1.0",
            "CrawlerSchemaDeserializerVersion": "1.0",
        }

    def _write(self, dataset: Dataset) -> None:
        database = self.crawler["DatabaseName"]
        policy = self.crawler.get("SchemaChangePolicy") or {}
        update = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE") == "UPDATE_IN_DATABASE"
        try:
            existing = self._glue.get_table(DatabaseName=database, Name=dataset.name)["Table"]
        except self._glue.exceptions.EntityNotFoundException:
            existing = None

        if existing is None:
            columns = dataset.columns
        else:
            # Keep the catalog's columns in place and append the new ones.
            old = {c["Name"]: c["Type"] for c in existing["StorageDescriptor"]["Columns"]}
            merged = {**old, **{n: t for n, t in dataset.columns.items() if n not in old}}
            columns = {n: dataset.columns.get(n, t) for n, t in merged.items()} if update else old
        table_input = {
            "Name": dataset.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": self._parameters(dataset),
            "StorageDescriptor": self._storage(dataset, columns, dataset.location),
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in dataset.partition_keys],
        }
        if existing is None:
            self._glue.create_table(DatabaseName=database, TableInput=table_input)
            self.tables_created += 1
        elif update:
            self._glue.update_table(DatabaseName=database, TableInput=table_input)
            self.tables_updated += 1
        else:
            log.info("crawler %s: LOG policy, %s left as is", self.crawler["Name"], dataset.name)
        self._write_partitions(database, dataset, columns)

    def _write_partitions(self, database: str, dataset: Dataset, columns: Columns) -> None:
        if not dataset.partitions:
            return
        known: set[tuple[str, ...]] = set()
        paginator = self._glue.get_paginator("get_partitions")
        for page in paginator.paginate(DatabaseName=database, TableName=dataset.name):
            known.update(tuple(p["Values"]) for p in page["Partitions"])
        new = [
            {"Values": list(values), "StorageDescriptor": self._storage(dataset, columns, loc)}
            for values, loc in sorted(dataset.partitions.items())
            if values not in known
        ]
        for start in range(0, len(new), 100):  # BatchCreatePartition takes 100 at a time
            errors = self._glue.batch_create_partition(
                DatabaseName=database,
                TableName=dataset.name,
                PartitionInputList=new[start : start + 100],
            ).get("Errors")
            if errors:
                raise CrawlError(f"could not add partitions to {dataset.name}: {errors}")


class GlueCrawlerRunner:
    """Makes the emulator's `StartCrawler` crawl S3 and write the Data Catalog.

    `endpoint_url` is the emulator's (the crawl reads S3 and writes Glue through
    its API); `state_dir` is accepted for symmetry with the other local services
    and unused: crawls keep no state of their own.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str = defaults.REGION,
        state_dir: str | Path | None = None,
        state_guard: Any = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.state_dir = state_dir
        #: Held shared while a crawl's end is recorded in moto (a `persistence.StateGuard`).
        self.state_guard = state_guard
        self._threads: list[threading.Thread] = []

    def _client(self, service: str, region: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id=defaults.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=defaults.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=defaults.CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        ).client(service, endpoint_url=self.endpoint_url)

    def start(self) -> GlueCrawlerRunner:
        """Crawl for every crawl moto starts (through `moto_patches`)."""
        if self.launch not in moto_patches.on_start_crawler:
            moto_patches.on_start_crawler.append(self.launch)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Take no more crawls, and wait for running ones."""
        if self.launch in moto_patches.on_start_crawler:
            moto_patches.on_start_crawler.remove(self.launch)
        for thread in list(self._threads):
            thread.join(timeout)

    def launch(self, backend: Any, crawler: Any) -> None:
        """Crawl in the background for a crawl moto has just started."""
        crawl_state = moto_internals.current_crawl(crawler)
        moto_internals.pin_crawl_running(crawl_state)
        _account, region, _partition = moto_internals.backend_location(backend)
        thread = threading.Thread(
            target=self._crawl,
            args=(region, crawler, crawl_state),
            name=f"crawler-{moto_internals.crawler_name(crawler)}",
            daemon=True,
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _crawl(self, region: str, crawler: Any, crawl_state: Any) -> None:
        started = time.monotonic()
        error = None
        try:
            s3, glue = self._client("s3", region), self._client("glue", region)
            crawl = Crawl(s3, glue, moto_internals.crawler_description(crawler))
            crawl.run()
            log.info(
                "crawler %s: %d tables created, %d updated",
                moto_internals.crawler_name(crawler),
                crawl.tables_created,
                crawl.tables_updated,
            )
        except CrawlError as exc:
            error = str(exc)
        except Exception as exc:  # a crawl never leaves the crawler stuck RUNNING
            log.exception("crawler %s failed", moto_internals.crawler_name(crawler))
            error = f"{type(exc).__name__}: {exc}"
        held = self.state_guard.shared() if self.state_guard is not None else nullcontext()
        with held:
            elapsed_ms = int((time.monotonic() - started) * 1000)
            moto_internals.finish_crawl(crawler, crawl_state, error, elapsed_ms)
