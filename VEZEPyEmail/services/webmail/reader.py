"""The reading pane: one message in full, its conversation, and whether images may load."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyEmail.services.messages import detail
from VEZEPyEmail.services.messages.schemas import MessageDetailRead
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.webmail import images, listing


@dataclass(frozen=True)
class Reading:
    row: listing.Row
    message: MessageDetailRead
    conversation: list[listing.Row]
    images_allowed: bool

    @property
    def blocked_images(self) -> bool:
        return self.message.has_remote_images and not self.images_allowed


async def read_message(
    connection: AsyncConnection,
    blobs: BlobStore,
    *,
    principal: Principal,
    mailbox_id: int,
    message_id: int,
) -> Reading:
    """Everything the reading pane shows; 404 unless the message is in this mailbox."""
    row = await listing.get_row(connection, mailbox_id=mailbox_id, message_id=message_id)
    owned = await detail.load_owned(connection, message_id=message_id, principal=principal)
    message = await detail.read_detail(blobs, owned)
    allowed = await images.images_allowed(
        connection, mailbox_id=mailbox_id, message_id=message_id, sender=row.sender_address
    )
    thread = await listing.conversation(connection, mailbox_id=mailbox_id, row=row)
    return Reading(row=row, message=message, conversation=thread, images_allowed=allowed)
