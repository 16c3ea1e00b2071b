-- Run once, by docker-entrypoint.sh, on a new cluster. One login role and one database per
-- service: each service owns its schema and cannot even connect to the other's database.
-- The passwords arrive as psql variables (-v), never written into a file.
CREATE ROLE orders LOGIN PASSWORD :'orders_password';
CREATE DATABASE orders OWNER orders;
REVOKE ALL ON DATABASE orders FROM PUBLIC;

CREATE ROLE payments LOGIN PASSWORD :'payments_password';
CREATE DATABASE payments OWNER payments;
REVOKE ALL ON DATABASE payments FROM PUBLIC;
