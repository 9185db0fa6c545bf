"""Attachment uploads for composing (scope `email.send`): one file per request.

Size-limited per file (`EMAIL_UPLOAD_MAX_SIZE`, never above the message limit) with a clear
413, owned by the uploader (another user's id answers 404) and deleted when unused for
`EMAIL_UPLOAD_TTL` seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from starlette.datastructures import UploadFile

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError, BadRequest, Forbidden, NotFound
from VEZEPyEmail.app.deps import SettingsDep
from VEZEPyEmail.app.security import SendPrincipal, normalise_local_address
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.uploads.schemas import UploadRead
from VEZEPyEmail.services.uploads.store import UploadQuotaExceeded, UploadStore

UploadId = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Room for the multipart framing around the file itself.
MULTIPART_OVERHEAD = 16 * 1024
#: The largest `upload_max_bytes` the settings allow; the configured one is enforced below.
UPLOAD_BODY_CEILING = 200 * 1024 * 1024 + MULTIPART_OVERHEAD
router = APIRouter(prefix="/api/uploads", tags=["uploads"], max_body_size=UPLOAD_BODY_CEILING)
CHUNK = 1024 * 1024
MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class UploadTooLarge(AppError):
    status_code, code = 413, "upload_too_large"


def _owner(principal: Principal, settings: EmailSettings) -> str:
    if not principal.address:
        raise Forbidden("this token speaks for no mailbox")
    return normalise_local_address(principal.address, settings.mail_domain)


def _store(request: Request) -> UploadStore:
    store: UploadStore = request.app.state.uploads
    return store


def file_limit(settings: EmailSettings) -> int:
    return min(settings.upload_max_bytes, settings.max_message_bytes)


async def _declared_size_fits(request: Request) -> None:
    """A declared body over the limit is refused before anything reads it (this dependency
    comes first: a cookie-authenticated form would otherwise be parsed for its CSRF field)."""
    limit = file_limit(request.app.state.settings)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise UploadTooLarge(f"file: larger than the {limit} bytes allowed per attachment")


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise UploadTooLarge(f"file: larger than the {limit} bytes allowed per attachment")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    response_model=UploadRead,
    status_code=status.HTTP_201_CREATED,
    summary="Upload an attachment (multipart field `file`)",
    openapi_extra=MULTIPART_BODY,
    responses={
        400: {"description": "Not multipart/form-data with one file in the field `file`"},
        413: {"description": "Larger than the per-file limit"},
    },
)
async def create_upload(
    request: Request,
    _size: Annotated[None, Depends(_declared_size_fits)],
    principal: SendPrincipal,
    settings: SettingsDep,
) -> UploadRead:
    """Returns the id to list in a draft's or message's `attachments`."""
    owner = _owner(principal, settings)
    limit = file_limit(settings)
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception as exc:  # starlette's MultiPartException, bad content type, ...
        raise BadRequest(f"expected multipart/form-data with one file: {exc}") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("the multipart field `file` must hold a file")
        data = await _read_limited(upload, limit)
        try:
            stored = await _store(request).put(
                owner,
                data=data,
                filename=upload.filename or "",
                content_type=upload.content_type,
            )
        except UploadQuotaExceeded as exc:
            raise UploadTooLarge(str(exc), code="upload_quota_exceeded") from exc
    finally:
        await form.close()
    return UploadRead.model_validate(stored, from_attributes=True)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an upload",
    responses={404: {"description": "No such upload of the caller's"}},
)
async def delete_upload(
    upload_id: UploadId, request: Request, principal: SendPrincipal, settings: SettingsDep
) -> Response:
    if not await _store(request).delete(_owner(principal, settings), upload_id):
        raise NotFound("no such upload")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
