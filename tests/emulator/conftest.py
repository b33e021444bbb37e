"""Fixtures: a fresh emulator per test on loopback, and a small authenticated client."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tap_zoho_crm.emulator import Emulator

CREDENTIALS = {"grant_type": "refresh_token", "client_id": "emulator-client",
               "client_secret": "emulator-secret", "refresh_token": "emulator-refresh"}


class Client:
    """Talks to one emulator the way the tap does (token, then Zoho-oauthtoken header)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.base = emu.base_url
        self.http = requests.Session()
        self.token = ""
        self.refresh()

    def refresh(self) -> None:
        self.token = self.http.post(self.emu.token_url, data=CREDENTIALS).json()["access_token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Zoho-oauthtoken {self.token}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.http.get(self.base + path, headers=headers, timeout=30, **kwargs)

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.http.request(method, self.base + path, headers=headers, timeout=30,
                                 **kwargs)

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, f"{self.base}/__admin{path}", json=body, timeout=30)

    def fault(self, name: str, **options: Any) -> None:
        answer = self.admin("POST", "/faults", {"fault": name, **options})
        assert answer.status_code == 201, answer.text

    def create_job(self, query: dict[str, Any]) -> str:
        answer = self.send("POST", "/crm/bulk/v8/read", json={"query": query})
        assert answer.status_code == 201, answer.text
        return answer.json()["data"][0]["details"]["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/crm/bulk/v8/read/{job_id}").json()["data"][0]

    def wait_job(self, job_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            details = self.job(job_id)
            if details["state"] in ("COMPLETED", "FAILURE"):
                return details
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish")

    def rows(self, job_id: str) -> list[list[str]]:
        answer = self.get(f"/crm/bulk/v8/read/{job_id}/result")
        assert answer.status_code == 200, answer.text
        return read_zip(answer.content, job_id)

    def export(self, query: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]]]:
        job_id = self.create_job(query)
        details = self.wait_job(job_id)
        return details, self.rows(job_id)

    def truth(self, module: str = "Leads") -> list[dict[str, Any]]:
        return self.admin("GET", f"/modules/{module}/records").json()["data"]


def read_zip(content: bytes, job_id: str) -> list[list[str]]:
    """The rows of the single CSV inside a result ZIP, read with the csv module."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == [f"{job_id}.csv"]
        with archive.open(f"{job_id}.csv") as raw:
            return list(csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(leads=60, seed=7, page_size=25, job_seconds=0.2,
                  callback_batch_ms=100) as running:
        yield running


@pytest.fixture
def client(emu: Emulator) -> Client:
    return Client(emu)
