"""The scope vocabulary. Roles map to these in the portal; services check them here."""

EMAIL_READ = "email.read"
EMAIL_SEND = "email.send"
#: Service scope: act on any mailbox of the local domain (provisioning, system mail).
EMAIL_ADMIN = "email.admin"
GAME_PLAY = "game.play"
GAME_READ_MAIL = "game.read_mail"
GAME_ADMIN = "game.admin"
PORTAL_ADMIN = "portal.admin"
#: Service scope: create accounts' resources across services.
PORTAL_PROVISION = "portal.provision"

ALL_SCOPES = frozenset(
    {
        EMAIL_READ,
        EMAIL_SEND,
        EMAIL_ADMIN,
        GAME_PLAY,
        GAME_READ_MAIL,
        GAME_ADMIN,
        PORTAL_ADMIN,
        PORTAL_PROVISION,
    }
)
