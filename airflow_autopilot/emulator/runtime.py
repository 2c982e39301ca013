"""The emulator's SageMaker runtime front end: InvokeEndpoint requests parsed and answered from
:mod:`airflow_autopilot.emulator.serving` (moto's own answers canned results)."""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import unquote

from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.utils import arn_formatter
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from airflow_autopilot.emulator import controls, serving

#: The entry of ``moto.sagemakerruntime.urls.url_paths`` that serves InvokeEndpoint.
INVOKE_URL_KEY = "{0}/endpoints/(?P<name>[^/]+)/invocations$"


def _header(headers: Any, name: str) -> str | None:
    # werkzeug's headers (both modes) look names up case-insensitively.
    value = (headers or {}).get(name)
    return None if value is None else str(value)


class _Throttled(ServiceException):
    code, message = "ThrottlingException", "Rate exceeded (injected by the autopilot emulator)."


class _InternalFailure(ServiceException):
    code, message = "InternalFailure", "An internal error occurred (injected by the autopilot emulator)."


class _AccessDenied(ServiceException):
    code = "AccessDeniedException"
    message = "User is not authorized to perform: sagemaker:InvokeEndpoint (denied by the autopilot emulator)"


class _ExpiredToken(ServiceException):
    code, message = (
        "ExpiredTokenException",
        "The security token included in the request is expired (injected)",
    )


#: The error each injected fault (:func:`controls.inject_faults`) answers an InvokeEndpoint with.
_FAULTS: dict[str, type[ServiceException]] = {
    controls.FAULT_THROTTLE: _Throttled,
    controls.FAULT_SERVER_ERROR: _InternalFailure,
    controls.FAULT_ACCESS_DENIED: _AccessDenied,
    controls.FAULT_EXPIRED_TOKEN: _ExpiredToken,
}


class RuntimeResponse(SageMakerRuntimeResponse):
    """moto's sagemaker-runtime responses with InvokeEndpoint answered by the deployed candidate."""

    def _endpoint_name(self) -> str:
        return unquote(self.path.split("?", 1)[0].rstrip("/").split("/")[-2])

    def _determine_resource(self) -> str:
        """The endpoint's ARN, which moto's access control (IAM enforced) matches policies against."""
        return arn_formatter("endpoint", self._endpoint_name().lower(), self.current_account, self.region)

    def _fault(self, fault: str) -> TYPE_RESPONSE:
        error = _FAULTS.get(fault, _InternalFailure)()
        with warnings.catch_warnings():
            # Codes outside sagemaker-runtime's model: moto warns but serializes them correctly.
            warnings.simplefilter("ignore", UserWarning)
            status, headers, body = self.serialized(ActionResult(error))
        status = 500 if isinstance(error, _InternalFailure) else 400
        headers["status"] = status
        return status, headers, body

    def invoke_endpoint(self) -> TYPE_RESPONSE:
        """InvokeEndpoint: the candidate's predictions, ``ModelError`` or ``ValidationError``.

        Results queued through moto's own API (``/moto-api/static/sagemaker/endpoint-results``)
        are answered first, in order, as moto documents, so tests written against moto keep working.
        """
        controls.count_request("InvokeEndpoint", _header(self.headers, "User-Agent") or "")
        fault = controls.take_fault("InvokeEndpoint", None)
        if fault is not None:
            return self._fault(fault)
        if self.sagemakerruntime_backend.results_queue:
            return super().invoke_endpoint()
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        invocation = serving.invoke(
            sagemaker_backends[self.current_account][self.region],
            self._endpoint_name(),
            body,
            _header(self.headers, "Content-Type"),
            _header(self.headers, "Accept"),
            target_variant=_header(self.headers, "X-Amzn-SageMaker-Target-Variant"),
            inference_id=_header(self.headers, "X-Amzn-SageMaker-Inference-Id"),
        )
        headers = {
            "Content-Type": invocation.content_type,
            "x-Amzn-Invoked-Production-Variant": invocation.variant,
        }
        return 200, headers, invocation.body
