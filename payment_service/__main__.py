"""`python -m payment_service [serve|migrate]`: the service is built in server.py."""

from payment_service.server import main

main()
