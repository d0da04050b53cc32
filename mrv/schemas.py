"""What crosses the wire for the mrv API."""

from __future__ import annotations

from pydantic import BaseModel


class ParameterOut(BaseModel):
    name: str
    value: float
    unit: str
    source: str
    uncertainty: str | None


class MethodologyOut(BaseModel):
    name: str
    version: str
    title: str
    parameters: list[ParameterOut]
