"""HTTP routes of the mrv package: a read-only list of the methodologies."""

from __future__ import annotations

from fastapi import APIRouter

from mrv.schemas import MethodologyOut, ParameterOut

router = APIRouter(prefix="/mrv", tags=["mrv"])

# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by path prefix.
BODY_LIMITS: dict[str, int] = {}


def methodology_list() -> list[MethodologyOut]:
    from mrv.methodologies import all_methodologies

    result = []
    for item in all_methodologies():
        parameters = []
        for spec in item.parameters:
            spread = None
            if spec.uncertainty is not None:
                described = spec.uncertainty.as_dict()
                spread = ", ".join(f"{key}={value}" for key, value in sorted(described.items()))
            parameters.append(
                ParameterOut(
                    name=spec.name,
                    value=spec.value,
                    unit=spec.unit,
                    source=spec.source,
                    uncertainty=spread,
                )
            )
        result.append(
            MethodologyOut(
                name=item.name, version=item.version, title=item.title, parameters=parameters
            )
        )
    return result


@router.get(
    "/methodologies",
    summary="List the MRV methodologies with their parameters and sources",
    response_model=list[MethodologyOut],
)
def list_methodologies() -> list[MethodologyOut]:
    return methodology_list()
