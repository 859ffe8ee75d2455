"""The AWS side as one resource: clients for the configured endpoint and the deployment's names.

The pipeline never asks whether it talks to AWS or to the local cloud; it gets
an endpoint (or none, for real AWS) and names, and moves bytes with boto3. S3
goes through dagster-aws's `S3Resource`. The names (`Settings`) resolve when a
run starts, so loading the code location asks AWS nothing.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from botocore.config import Config
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from pipeline_platform.environment import Settings, load_settings

# Enough parallel transfers to keep a laptop's emulator and S3 busy.
_TRANSFER_THREADS = 8
# Up to this many days, partitions are listed one by one rather than by one pass.
_PER_PARTITION_LISTING_MAX = 31
_BOTO_CONFIG = Config(max_pool_connections=_TRANSFER_THREADS * 2, retries={"mode": "standard"})


@dataclass(frozen=True)
class StoredObject:
    """One S3 object as a listing shows it."""

    key: str
    last_modified: datetime
    size: int


class CloudResource(dg.ConfigurableResource):
    """Clients and resource names of one deployment (AWS or the local cloud).

    `s3` carries the region and endpoint (known without asking AWS); `settings`,
    the deployment's names, resolve at the start of a run (or on first use
    outside one), from STS locally and from the stacks' outputs in `aws`.
    """

    s3: S3Resource
    _settings: Settings | None = PrivateAttr(default=None)
    # One client per service for the resource's life: building one loads the service's model
    # (dagster-aws builds a new session on every `get_client`), which cost more than the
    # calls themselves. boto3 clients are safe to share between threads.
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Resolve the deployment's names once per run, before any asset needs them."""
        self._settings = load_settings()

    @property
    def settings(self) -> Settings:
        """The deployment's names and warehouse location."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def client(self, service: str) -> Any:
        """The boto3 client for `service` at the configured endpoint and region."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = (
                    self.s3.get_client()
                    if service == "s3"
                    else boto3.client(
                        service,
                        endpoint_url=self.s3.endpoint_url,
                        region_name=self.s3.region_name,
                        config=_BOTO_CONFIG,
                    )
                )
            return self._clients[service]

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every object key under `prefix`, in key order."""
        return [o.key for o in self.list_objects(bucket, prefix)]

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every object under `prefix` with its `LastModified` and size, in key order."""
        paginator = self.client("s3").get_paginator("list_objects_v2")
        found = [
            StoredObject(obj["Key"], obj["LastModified"], obj["Size"])
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]
        return sorted(found, key=lambda o: o.key)

    def get_json(self, bucket: str, key: str) -> Any:
        """The JSON document stored at `key`."""
        return json.loads(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def put_json(self, bucket: str, key: str, document: Any) -> None:
        """Store `document` as JSON at `key`."""
        self.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, indent=1, default=str).encode(),
            ContentType="application/json",
        )

    def partition_keys(self, bucket: str, prefix: str, days: Iterable[date]) -> list[str]:
        """Keys in the Hive partitions `<prefix>dt=YYYY-MM-DD/` of `days`, in key order.

        A few days are listed one partition at a time; a long range (a backfill
        of years) is listed once and filtered, since listing a thousand empty
        partitions costs far more than one pass over the prefix.
        """
        wanted = {f"{prefix}dt={day.isoformat()}/" for day in days}
        if len(wanted) <= _PER_PARTITION_LISTING_MAX:
            return sorted(k for p in wanted for k in self.list_keys(bucket, p))
        width = len(prefix) + len("dt=YYYY-MM-DD/")
        return [k for k in self.list_keys(bucket, prefix) if k[:width] in wanted]

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many were deleted."""
        return self.delete_keys(bucket, self.list_keys(bucket, prefix))

    def delete_keys(self, bucket: str, keys: list[str]) -> int:
        """Delete `keys` in batches of a thousand; returns how many were deleted."""
        s3 = self.client("s3")
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
        return len(keys)

    def download(
        self,
        bucket: str,
        keys: Iterable[str],
        directory: Path,
        strip: str = "",
        on_fetched: Callable[[int], None] | None = None,
    ) -> list[Path]:
        """Download `keys` into `directory`, keeping the key path below `strip`.

        `on_fetched`, when given, is called (from the transfer threads) with the number
        of files downloaded so far, after each file.
        """
        s3 = self.client("s3")
        fetched = itertools.count(1)

        def fetch(key: str) -> Path:
            target = directory / key.removeprefix(strip)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            if on_fetched is not None:
                on_fetched(next(fetched))
            return target

        with ThreadPoolExecutor(_TRANSFER_THREADS) as pool:
            return list(pool.map(fetch, list(keys)))

    def upload_tree(self, directory: Path, bucket: str, prefix: str) -> list[str]:
        """Upload every file below `directory` to `prefix` + its relative path."""
        s3 = self.client("s3")
        files = sorted(p for p in directory.rglob("*") if p.is_file())

        def put(path: Path) -> str:
            key = prefix + path.relative_to(directory).as_posix()
            s3.upload_file(str(path), bucket, key)
            return key

        with ThreadPoolExecutor(_TRANSFER_THREADS) as pool:
            return list(pool.map(put, files))
