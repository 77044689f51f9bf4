"""An S3 API on loopback for the tests that keep files in an object store: moto's server in a thread.

moto's in-process mock does not reach s3fs (its aiobotocore client awaits the mocked body), so the suite talks to
moto's server through the standard AWS environment, as a run pod talks to MinIO. The top conftest.py makes it the
session fixture `s3_server`, and `s3_bucket` gives each test an empty bucket of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pdm_assets_tests.support.processes import free_port

AWS_ENV = {"AWS_ACCESS_KEY_ID": "local-test", "AWS_SECRET_ACCESS_KEY": "local-test", "AWS_DEFAULT_REGION": "us-east-1"}


def boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"], "region_name": AWS_ENV["AWS_DEFAULT_REGION"]}


@contextmanager
def running_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **boto_credentials()).create_bucket(Bucket=bucket)
