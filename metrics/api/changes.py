"""What a value write request says about itself: why (``X-Change-Reason``) and which
version it expects (``If-Match``); and the ``ETag`` the answers carry."""

from contextlib import AbstractContextManager

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

from ..changes import ChangeContext, change_context
from ..constants import CHANGE_REASON_MAX_LENGTH

REASON_HEADER = "X-Change-Reason"


def change_reason(request) -> str | None:
    """The request's ``X-Change-Reason`` (``None`` when absent or empty); 400 when over
    the limit."""
    reason = request.headers.get(REASON_HEADER) or None
    if reason is not None and len(reason) > CHANGE_REASON_MAX_LENGTH:
        raise ValidationError(
            {
                REASON_HEADER: [
                    f"{REASON_HEADER} is at most {CHANGE_REASON_MAX_LENGTH} characters "
                    f"(got {len(reason)})."
                ]
            }
        )
    return reason


def request_change(request, source: str) -> AbstractContextManager[ChangeContext]:
    """Attribute the writes of ``request`` to ``source``, its user (and API key) and its
    ``X-Change-Reason``."""
    return change_context(source=source, user=request.user, reason=change_reason(request))


def if_match(request) -> list[int] | None:
    """The versions ``If-Match`` accepts; ``None`` when absent or ``*`` (any version).
    A list of anything but quoted versions is a 400."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    versions = []
    for part in raw.split(","):
        tag = part.strip()
        if tag == "*":
            return None
        tag = tag.removeprefix("W/")
        if len(tag) < 3 or tag[0] != '"' or tag[-1] != '"' or not tag[1:-1].isdigit():
            raise ValidationError(
                {"If-Match": ['If-Match must be quoted versions ("3", "4") or *.']}
            )
        versions.append(int(tag[1:-1]))
    return versions


def etag(version: int) -> dict[str, str]:
    """The ``ETag`` header of a value at ``version``."""
    return {"ETag": f'"{version}"'}


REASON_PARAM = OpenApiParameter(
    REASON_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=f"Why the change is made, kept in the value's history (at most "
    f"{CHANGE_REASON_MAX_LENGTH} characters; longer is a 400).",
)
IF_MATCH_PARAM = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='Quoted versions (`"3"`, or `"3", "4"`) or `*`. When none is the value\'s '
    "current version: 412 `precondition_failed`, nothing changed, `data.version` holds the "
    "current one. Without it the write proceeds whatever the version.",
)


def etag_header(*statuses: int) -> OpenApiParameter:
    """The ``ETag`` response header, documented for the answers with ``statuses``."""
    return OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=list(statuses),
        description='The value\'s version, quoted (`"3"`): send it back in `If-Match`.',
    )
