"""HTTP routes of the registry package (thin: parse, check permission, call the service)."""

from fastapi import APIRouter

router = APIRouter(prefix="/registry", tags=["registry"])

# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by path prefix.
BODY_LIMITS: dict[str, int] = {}
