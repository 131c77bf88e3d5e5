"""Deployment configuration: where each department is reached (phone number, SIP address or queue).

Validated at start-up against the catalogue's departments, so a call is never handed to a department that has no
target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_DIAL_TIMEOUT_S = 30
"""Ringing time of a department's number or SIP address when its entry sets no timeout_s (Twilio's own default)."""


class DeploymentError(ValueError):
    """The deployment file is missing, malformed or does not cover the catalogue's departments."""


class TransferTarget(BaseModel):
    """Where one department takes calls: exactly one of a number, a SIP address or a queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    """An E.164 phone number, such as +15005550101."""
    sip: str | None = Field(default=None, pattern=r"^sips?:\S+@\S+$")
    """A SIP URI, such as sip:billing@pbx.example.com."""
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    """A Twilio queue name."""
    timeout_s: int | None = Field(default=None, ge=5, le=600)
    """How long a number or SIP address rings before the caller is offered a call-back or a message; default
    DEFAULT_DIAL_TIMEOUT_S. Twilio accepts 5 to 600 seconds."""

    @model_validator(mode="after")
    def _exactly_one(self) -> TransferTarget:
        given = [name for name in ("number", "sip", "queue") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of number, sip or queue, got {given or 'none'}")
        if self.queue and self.timeout_s is not None:
            # A queue holds the caller until someone takes the call; nothing rings, so nothing can time out.
            raise ValueError("timeout_s applies to a number or a sip address, not to a queue")
        return self

    @property
    def dial_timeout_s(self) -> int:
        """Seconds to ring a number or SIP address before giving up."""
        return self.timeout_s or DEFAULT_DIAL_TIMEOUT_S


class _DeploymentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    departments: dict[str, TransferTarget]


def load_transfer_targets(path: Path, departments: Iterable[str]) -> Mapping[str, TransferTarget]:
    """Read the deployment file and check that every department of the catalogue has a target.

    Raises:
        DeploymentError: naming the file and the department at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise DeploymentError(f"{path}: deployment file not found (set VOICE_AGENT_DEPLOYMENT_FILE)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _DeploymentFile.model_validate(data)
    except yaml.YAMLError as error:
        raise DeploymentError(f"{path}: not valid YAML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise DeploymentError(f"{path}: {location}: {first['msg']}") from error
    check_departments(parsed.departments, departments, str(path))
    return MappingProxyType(dict(parsed.departments))


def check_departments(targets: Iterable[str], departments: Iterable[str], source: str) -> None:
    """Check that the deployment's targets and the catalogue's departments name the same departments.

    Args:
        targets: the departments the deployment reaches.
        departments: the catalogue's departments.
        source: where the targets come from, for the message (the deployment file).

    Raises:
        DeploymentError: naming the departments without a target, or the targets no department uses.
    """
    known, reached = list(departments), list(targets)
    missing = [name for name in known if name not in reached]
    unknown = [name for name in reached if name not in known]
    if missing:
        raise DeploymentError(f"{source}: departments without a target: {', '.join(missing)}")
    if unknown:
        raise DeploymentError(f"{source}: departments not in the catalogue: {', '.join(unknown)}")
