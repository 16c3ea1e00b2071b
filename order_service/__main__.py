"""`python -m order_service [serve|migrate]`: the service is built in server.py."""

from order_service.server import main

main()
