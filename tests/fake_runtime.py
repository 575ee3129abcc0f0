"""A fake IBM Quantum cloud for offline tests of the device path (qtlmnist.hardware).

Its service, backend and jobs are `unittest.mock.create_autospec`s of QiskitRuntimeService, IBMBackend and
RuntimeJobV2, so every call the code under test makes (and that SamplerV2 and Batch make on its behalf, such as
QiskitRuntimeService._run) is checked against the real signature. The jobs live in a folder, one JSON file each,
so they outlive the process that submitted them: a second process (or a fresh `Cloud` on the same folder) finds
them by id, as IBM's servers would. The device is FakeManilaV2: a job's result is what its local testing mode
returns, serialised with qiskit-ibm-runtime's own RuntimeEncoder.

Behaviour is set in the folder's settings.json (so a subprocess sees it too): `hold` keeps new jobs queued (their
result() waits) until `release()`; `reject` makes every new job end in ERROR with that message; `transient`
makes that many submissions fail with HTTP 503 first, `transient_results` that many result fetches with 502.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from unittest.mock import create_autospec

from qiskit_ibm_runtime import IBMBackend, QiskitRuntimeService, RuntimeDecoder, RuntimeEncoder, RuntimeJobV2


class Cloud:
    def __init__(self, folder: str | Path, device: str = "ibm_fakecity", num_qubits: int | None = None):
        from qiskit_ibm_runtime import fake_provider

        self.folder = Path(folder)
        (self.folder / "jobs").mkdir(parents=True, exist_ok=True)
        self.device = device
        self.fake = fake_provider.FakeManilaV2()
        self.num_qubits = self.fake.num_qubits if num_qubits is None else num_qubits
        self.factory = create_autospec(QiskitRuntimeService)  # QiskitRuntimeService(channel=..., instance=...)
        self.service = self.factory.return_value
        self.service.backend.side_effect = self._backend
        self.service.backends.side_effect = lambda *args, **kwargs: [self._backend(self.device)]
        self.service.job.side_effect = self._job
        self.service._run.side_effect = self._run
        self.service._get_api_client.return_value.create_session.return_value = {"id": "batch-0001"}

    # --- settings shared with other processes -----------------------------------------------------------------

    def settings(self) -> dict:
        path = self.folder / "settings.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def set(self, **values) -> None:
        (self.folder / "settings.json").write_text(json.dumps(self.settings() | values))

    def release(self) -> None:
        """The device runs every queued job."""
        self.set(hold=False)
        for path in (self.folder / "jobs").glob("*.json"):
            record = json.loads(path.read_text())
            if record["status"] == "QUEUED":
                path.write_text(json.dumps(record | {"status": "DONE"}))

    def job_ids(self) -> list[str]:
        return sorted(path.stem for path in (self.folder / "jobs").glob("*.json"))

    # --- the autospecs' behaviour -------------------------------------------------------------------------------

    def _backend(self, name, instance=None, use_fractional_gates=False, calibration_id=None):
        from qiskit.providers.exceptions import QiskitBackendNotFoundError

        if name != self.device:
            raise QiskitBackendNotFoundError("No backend matches the criteria.")
        backend = create_autospec(IBMBackend, instance=True)
        backend.name = self.device
        backend.version = 2  # a BackendV2, as IBMBackend is
        backend.num_qubits = self.num_qubits
        backend.target = self.fake.target
        backend.dt = self.fake.dt
        backend.configuration.return_value = self.fake.configuration()  # simulator: false
        backend.properties.return_value = self.fake.properties()
        backend.service = self.service
        backend._instance = None
        backend.calibration_id = None
        backend.check_faulty.return_value = None
        return backend

    def _run(
        self,
        program_id,
        inputs,
        options=None,
        result_decoder=None,
        session_id=None,
        start_session=False,
        calibration_id=None,
        dry_run=False,
    ):
        from qiskit_ibm_runtime import SamplerV2
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError

        settings = self.settings()
        if settings.get("transient", 0) > 0:
            self.set(transient=settings["transient"] - 1)
            raise RequestsApiError("503 Server Error: Service Unavailable", 503)
        job_id = f"fake{len(self.job_ids()):05d}"
        record = {"program_id": program_id, "session_id": session_id, "status": "DONE", "error": None}
        if settings.get("reject"):
            record |= {"status": "ERROR", "error": settings["reject"]}
        else:
            result = SamplerV2(mode=self.fake).run(inputs["pubs"]).result()
            record["result"] = json.dumps(result, cls=RuntimeEncoder)
            if settings.get("hold"):
                record["status"] = "QUEUED"
        (self.folder / "jobs" / f"{job_id}.json").write_text(json.dumps(record))
        return self._job(job_id)

    def _record(self, job_id: str) -> dict:
        return json.loads((self.folder / "jobs" / f"{job_id}.json").read_text())

    def _job(self, job_id):
        from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError, RuntimeJobNotFound

        if not (self.folder / "jobs" / f"{job_id}.json").exists():
            raise RuntimeJobNotFound(f"Job not found: {job_id}")
        job = create_autospec(RuntimeJobV2, instance=True)
        job.job_id.return_value = job_id
        job.status.side_effect = lambda: self._record(job_id)["status"]
        job.error_message.side_effect = lambda: self._record(job_id)["error"]

        def result(timeout=None, decoder=None, poll_interval=None):
            from qiskit_ibm_runtime.api.exceptions import RequestsApiError

            settings = self.settings()
            if settings.get("transient_results", 0) > 0:
                self.set(transient_results=settings["transient_results"] - 1)
                raise RequestsApiError("502 Server Error: Bad Gateway", 502)
            while (record := self._record(job_id))["status"] == "QUEUED":
                time.sleep(0.1)
            if record["status"] == "ERROR":
                raise RuntimeJobFailureError(f"Unable to retrieve job result. {record['error']}")
            return json.loads(record["result"], cls=RuntimeDecoder)

        job.result.side_effect = result
        return job
