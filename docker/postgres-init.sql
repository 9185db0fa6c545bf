-- One database per service, owned by the `veze` role that the postgres image creates from
-- POSTGRES_USER. The image runs this once, when its data volume is empty
-- (/docker-entrypoint-initdb.d). The schema is not created here: each service applies its
-- own Alembic migrations on start.
CREATE DATABASE veze_portal OWNER veze;
CREATE DATABASE veze_game OWNER veze;
CREATE DATABASE veze_email OWNER veze;
